/*
 * mongoose_ffi.h - the C ABI of mongoose-ffi, designed for LuaJIT's FFI;
 * the model, conventions and every function: docs/c-api.md.
 *
 * mgffi_poll() runs mg_mgr_poll(); the glue queues what happened as events,
 * read with mgffi_events(); nothing calls back into Lua. Connections are
 * named by id (MGFFI_ERR_NO_CONN once gone). Event data stays valid until
 * the next mgffi_poll(); a server's HTTP request until the poll after the
 * one in which it was answered or its connection closed. Functions return
 * MGFFI_OK, a count (>= 0) or a negative MGFFI_ERR_* (text:
 * mgffi_last_error()); strings are pointer + length; no C++ exception
 * escapes.
 */
#ifndef MONGOOSE_FFI_H
#define MONGOOSE_FFI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Only the mgffi_ functions are exported from the shared library. */
#if defined(MGFFI_BUILDING) && defined(_WIN32)
#define MGFFI_API __declspec(dllexport)
#elif defined(MGFFI_BUILDING) && defined(__GNUC__)
#define MGFFI_API __attribute__((visibility("default")))
#else
#define MGFFI_API
#endif

#define MGFFI_ABI_VERSION 2 /* bumped when a struct layout or a signature changes */

/* ======================================================================
 * Status codes
 * ====================================================================== */
enum mgffi_status {
  MGFFI_OK = 0,
  MGFFI_ERR_ARG = -1,      /* an argument is invalid (NULL, out of range) */
  MGFFI_ERR_NO_CONN = -2,  /* no live connection has that id */
  MGFFI_ERR_LISTEN = -3,   /* cannot listen on that URL */
  MGFFI_ERR_CONNECT = -4,  /* cannot start a connection to that URL */
  MGFFI_ERR_NOMEM = -5,    /* out of memory */
  MGFFI_ERR_STATE = -6,    /* the connection is in the wrong state for this */
  MGFFI_ERR_INTERNAL = -7, /* unexpected failure, see mgffi_last_error() */
  MGFFI_ERR_FULL = -8,     /* the connection's send queue holds
                              MGFFI_LIMIT_MAX_SEND_QUEUE bytes or more */
  MGFFI_ERR_SPACE = -9     /* the output buffer is too small */
};

/* ======================================================================
 * Events
 * Values 0..22 are Mongoose's MG_EV_* values (checked at compile time).
 * Values from 64 on are produced by the glue.
 * ====================================================================== */
enum mgffi_event_type {
  MGFFI_EV_ERROR = 0, /* data: error message */
  MGFFI_EV_OPEN = 1,
  MGFFI_EV_POLL = 2, /* never queued */
  MGFFI_EV_RESOLVE = 3,
  MGFFI_EV_CONNECT = 4,
  MGFFI_EV_ACCEPT = 5, /* listener_id: the listener */
  MGFFI_EV_TLS_HS = 6,
  MGFFI_EV_READ = 7,  /* data: bytes received (consumed from the
                         connection); value: byte count */
  MGFFI_EV_WRITE = 8, /* value: bytes written */
  MGFFI_EV_CLOSE = 9,
  MGFFI_EV_HTTP_HDRS = 10, /* http: request head, body empty; only for
                              streamed bodies (MGFFI_LIMIT_STREAM_THRESHOLD) */
  MGFFI_EV_HTTP_MSG = 11,  /* http: whole request or response */
  MGFFI_EV_WS_OPEN = 12,   /* http: the upgrade request or response; value: 1
                              when permessage-deflate was agreed; data: the
                              Sec-WebSocket-Extensions value of the 101 */
  MGFFI_EV_WS_MSG = 13,    /* data: message; value: 0x80 | opcode (1 text,
                              2 binary) */
  MGFFI_EV_WS_CTL = 14,    /* data: payload; value: frame byte (ping, pong,
                              close) */
  MGFFI_EV_MQTT_CMD = 15,
  MGFFI_EV_MQTT_MSG = 16,
  MGFFI_EV_MQTT_OPEN = 17,
  MGFFI_EV_SNTP_TIME = 18, /* value: epoch milliseconds */
  MGFFI_EV_WAKEUP = 19,    /* data: wakeup payload */
  MGFFI_EV_MDNS_REQ = 20,
  MGFFI_EV_MDNS_RESP = 21,
  MGFFI_EV_MODBUS_REQ = 22,
  MGFFI_EV_HTTP_BODY = 64,     /* data: a piece of a streamed request body */
  MGFFI_EV_HTTP_BODY_END = 65, /* the streamed request body is complete;
                                  http: the request (trailers filled in) */
  MGFFI_EV_HTTP_REJECTED = 66, /* value: status sent (400, 408, 413, 417, 431,
                                  505) before the request reached Lua, or 503
                                  at accept; data: reason */
  MGFFI_EV_WS_FAILED = 67      /* the glue failed a WebSocket (protocol error,
                                  bad UTF-8, message too big, timeout): it sent
                                  a close frame and closes; value: the close
                                  code (1002, 1007, 1008, 1009, 1001); data:
                                  reason */
};

/* Bit for an event type in an event mask (types below 32 only). */
#define MGFFI_MASK(type) (1u << (type))

enum mgffi_event_flags {
  MGFFI_F_LISTENER = 1u << 0, /* the connection is a listener */
  MGFFI_F_CLIENT = 1u << 1,   /* the connection was made by mgffi_connect */
  MGFFI_F_ACCEPTED = 1u << 2, /* the connection was accepted by a listener */
  MGFFI_F_UDP = 1u << 3,
  MGFFI_F_WEBSOCKET = 1u << 4,
  MGFFI_F_TLS = 1u << 5,
  MGFFI_F_STREAMING = 1u << 6 /* HTTP_HDRS: the body follows as HTTP_BODY */
};

enum mgffi_protocol {
  MGFFI_PROTO_RAW = 0, /* tcp:// or udp:// bytes, READ events */
  MGFFI_PROTO_HTTP = 1 /* http:// (and ws:// for clients) */
};

/* ======================================================================
 * Plain data views
 * ====================================================================== */
typedef struct mgffi_str {
  const char *ptr; /* not NUL-terminated; NULL only when len is 0 */
  size_t len;
} mgffi_str;

typedef struct mgffi_header {
  mgffi_str name;
  mgffi_str value;
} mgffi_header;

#define MGFFI_MAX_HEADERS 64

typedef struct mgffi_http_message {
  mgffi_str method;        /* request: "GET"; response: "HTTP/1.1" */
  mgffi_str uri;           /* request: path without query; response: status code */
  mgffi_str query;         /* request: raw query string without '?' */
  mgffi_str proto;         /* request: "HTTP/1.1"; response: reason phrase */
  mgffi_str head;          /* raw request or status line plus headers */
  mgffi_str body;          /* body (de-chunked), empty for a streamed request */
  uint64_t content_length; /* Content-Length, or body length */
  int32_t status;          /* response status code, 0 for requests */
  uint32_t header_count;
  mgffi_header headers[MGFFI_MAX_HEADERS];
  uint32_t trailer_count; /* chunked requests: trailer fields */
  uint32_t reserved;
  const mgffi_header *trailers; /* trailer_count entries, or NULL */
} mgffi_http_message;

/* A network address, as Mongoose keeps it: bytes in network order. */
typedef struct mgffi_addr {
  uint8_t ip[16]; /* IPv4 uses the first 4 bytes */
  uint16_t port;  /* host byte order */
  uint8_t is_ip6;
  uint8_t reserved;
} mgffi_addr;

typedef struct mgffi_event {
  int32_t type;                   /* enum mgffi_event_type */
  uint32_t flags;                 /* enum mgffi_event_flags */
  uint64_t conn_id;               /* the connection the event happened on */
  uint64_t listener_id;           /* the listener that accepted it, or 0 */
  int64_t value;                  /* type-specific number, see the event list */
  mgffi_str data;                 /* type-specific bytes, see the event list */
  const mgffi_http_message *http; /* HTTP events, else NULL */
  mgffi_addr remote;              /* the peer (for UDP: the datagram's sender) */
} mgffi_event;

typedef struct mgffi_conn_info {
  uint64_t id;
  uint64_t listener_id;
  uint32_t flags; /* enum mgffi_event_flags */
  uint32_t event_mask;
  uint64_t send_queued; /* bytes waiting to be sent: backpressure */
  uint64_t recv_buffered;
  mgffi_addr local;
  mgffi_addr remote;
  int32_t fd; /* OS socket, or -1 */
  uint8_t is_closing;
  uint8_t is_draining;
  uint8_t response_pending; /* HTTP: a request waits for its reply */
  uint8_t reading_paused;   /* paused by mgffi_pause_reading */
  uint8_t reading_held;     /* not read for now by the glue itself: its
                               send queue is over MGFFI_LIMIT_MAX_SEND_QUEUE,
                               a request waits for its reply with the next
                               one buffered, or this poll queued enough */
  uint8_t reserved[7];
} mgffi_conn_info;

typedef struct mgffi_manager mgffi_manager;

/* ======================================================================
 * Version and layout (for the FFI layout test)
 * ====================================================================== */
MGFFI_API int mgffi_abi_version(void);
MGFFI_API const char *mgffi_mongoose_version(void);

typedef struct mgffi_layout_entry {
  const char *type;  /* struct name, e.g. "mgffi_event" */
  const char *field; /* field name, or NULL for the struct's own size */
  size_t offset;     /* offsetof, or 0 for the struct entry */
  size_t size;       /* sizeof the field or of the struct */
} mgffi_layout_entry;

/* The layout of every struct of this header, as this library was compiled
 * (generated from this header at build time). *count gets the entries. */
MGFFI_API const mgffi_layout_entry *mgffi_layout(size_t *count);

/* ======================================================================
 * Manager and polling
 * ====================================================================== */
/* A new manager, or NULL when out of memory. */
MGFFI_API mgffi_manager *mgffi_manager_new(void);
/* Closes every connection and frees the manager. NULL is ignored. */
MGFFI_API void mgffi_manager_free(mgffi_manager *m);

/* Runs one poll, waiting up to timeout_ms (0: do not wait) for I/O. Clears
 * the previous poll's events first. Returns the number of queued events, or
 * a negative MGFFI_ERR_*. */
MGFFI_API int mgffi_poll(mgffi_manager *m, int timeout_ms);

/* The events of the last poll: an array of mgffi_poll()'s count entries. */
MGFFI_API const mgffi_event *mgffi_events(const mgffi_manager *m);

/* The manager's epoll file descriptor: it becomes readable whenever a
 * poll would find I/O to do, so another event loop (libuv) can watch it
 * instead of polling on a timer. -1 when the build does not use epoll. */
MGFFI_API int mgffi_manager_fd(const mgffi_manager *m);

/* When the next poll is needed, for a program that polls only when the fd
 * above is readable: 0 = now (queued data to send, connections closing,
 * buffered input to parse), a positive number = within that many ms
 * (timeouts, DNS, connects in progress), -1 = only when the fd becomes
 * readable. */
MGFFI_API int mgffi_poll_hint(const mgffi_manager *m);

/* Text of the last failure on m (never NULL; "" when none). */
MGFFI_API const char *mgffi_last_error(const mgffi_manager *m);

/* Milliseconds of a monotonic clock, as Mongoose's timers use it. */
MGFFI_API uint64_t mgffi_millis(void);

/* Mongoose's log level: 0 none, 1 error, 2 info, 3 debug, 4 verbose. */
MGFFI_API void mgffi_log_set_level(int level);

/* Number of live connections (listeners included). */
MGFFI_API size_t mgffi_connection_count(const mgffi_manager *m);

/* Writes up to cap ids of live connections to ids; returns how many exist. */
MGFFI_API size_t mgffi_connection_ids(const mgffi_manager *m, uint64_t *ids, size_t cap);

/* The cap on payload bytes queued by one poll (default 64 MiB). Past it,
 * raw connections stop being read until the next poll, so one flooding
 * client cannot grow the queue without bound. */
MGFFI_API int mgffi_set_max_queue_bytes(mgffi_manager *m, uint64_t max_bytes);

/* The process's descriptor limit (RLIMIT_NOFILE, soft). With raise != 0 it
 * is first raised to the hard limit. Returns the soft limit (>= 0), or
 * MGFFI_ERR_STATE where the system has no such limit. */
MGFFI_API int64_t mgffi_fd_limit(int raise);

/* ======================================================================
 * Limits
 * Per listener (inherited by the connections it accepts later) or per
 * connection. A value of 0 always means "none": no limit, no timeout, never
 * stream. mgffi_limit_info gives each key's name, default and maximum.
 * ====================================================================== */
enum mgffi_limit {
  /* accepted connections of a listener open at once; one more is refused
     (HTTP: 503) without disturbing the others */
  MGFFI_LIMIT_MAX_CONNECTIONS = 0,
  /* the same, counted per client IP address (off by default) */
  MGFFI_LIMIT_MAX_CONNECTIONS_PER_IP = 1,
  /* no request in progress (HTTP) or nothing read (TCP) for this long:
     closed */
  MGFFI_LIMIT_IDLE_TIMEOUT_MS = 2,
  /* HTTP: a request's head and body not all received this long after its
     first byte (extended by 1 s per MIN_BODY_RATE bytes of body): 408 */
  MGFFI_LIMIT_REQUEST_TIMEOUT_MS = 3,
  /* bytes per second of request body that extend REQUEST_TIMEOUT by 1 s */
  MGFFI_LIMIT_MIN_BODY_RATE = 4,
  /* output queued and no byte of it accepted by the peer for this long:
     closed (HTTP, WebSocket, TCP) */
  MGFFI_LIMIT_SEND_TIMEOUT_MS = 5,
  /* HTTP: largest request head (431 beyond) */
  MGFFI_LIMIT_MAX_HEADER_SIZE = 6,
  /* HTTP: most header lines in a request head (431 beyond) */
  MGFFI_LIMIT_MAX_HEADERS = 7,
  /* HTTP: largest buffered request body, counted as it arrives, chunked
     bodies decoded (413 beyond) */
  MGFFI_LIMIT_MAX_BODY = 8,
  /* HTTP: a body larger than this (sized, or chunked once this much has
     arrived) is delivered as HTTP_HDRS + HTTP_BODY... + HTTP_BODY_END */
  MGFFI_LIMIT_STREAM_THRESHOLD = 9,
  /* bytes queued for sending at which writes fail with MGFFI_ERR_FULL and
     the connection is not read until half of it has gone out */
  MGFFI_LIMIT_MAX_SEND_QUEUE = 10,
  /* WebSocket: largest message (close 1009 beyond) */
  MGFFI_LIMIT_WS_MAX_MESSAGE = 11,
  /* WebSocket: nothing received for this long: closed with 1001; a ping is
     sent after half of it */
  MGFFI_LIMIT_WS_IDLE_TIMEOUT_MS = 12,
  /* WebSocket: a fragmented message not completed this long after its
     first frame: closed with 1008 */
  MGFFI_LIMIT_WS_MESSAGE_TIMEOUT_MS = 13,
  /* WebSocket: control frames per second a peer may send (a burst of
     twice as many); beyond: closed with 1008 */
  MGFFI_LIMIT_WS_CONTROL_RATE = 14,
  /* WebSocket: messages larger than this are sent in fragments of this
     size (mgffi_ws_send) */
  MGFFI_LIMIT_WS_FRAGMENT_SIZE = 15,
  MGFFI_LIMIT_COUNT = 16
};

/* Sets limit key of connection (or listener) id to value. */
MGFFI_API int mgffi_set_limit(mgffi_manager *m, uint64_t id, int key, uint64_t value);
/* Reads limit key of connection id into *value. */
MGFFI_API int mgffi_get_limit(mgffi_manager *m, uint64_t id, int key, uint64_t *value);
/* For key: its name ("max_body"), its default for a listener or client of
 * protocol (MGFFI_PROTO_*) and the largest accepted value (any out-pointer
 * may be NULL). Returns MGFFI_OK or MGFFI_ERR_ARG. */
MGFFI_API int mgffi_limit_info(int key, int protocol, const char **name, uint64_t *default_value,
                               uint64_t *max_value);

/* ======================================================================
 * Connections
 * ====================================================================== */
/* Starts listening on url ("http://127.0.0.1:8000", "tcp://[::1]:9000",
 * "udp://0.0.0.0:5353"). On success stores the listener's id in *id. */
MGFFI_API int mgffi_listen(mgffi_manager *m, const char *url, size_t url_len, int protocol,
                           uint64_t *id);

/* Starts an outgoing connection; CONNECT or ERROR + CLOSE events follow. */
MGFFI_API int mgffi_connect(mgffi_manager *m, const char *url, size_t url_len, int protocol,
                            uint64_t *id);

/* Which events of a connection are queued (MGFFI_MASK bits). Connections
 * accepted later by a listener inherit the listener's mask. */
MGFFI_API int mgffi_set_event_mask(mgffi_manager *m, uint64_t id, uint32_t mask);

/* Appends bytes to the connection's send buffer (UDP: sends one datagram at
 * once). MGFFI_ERR_FULL when the queue is at its limit; MGFFI_ERR_STATE on a
 * TCP listener, or for a datagram the kernel refused. */
MGFFI_API int mgffi_send(mgffi_manager *m, uint64_t id, const void *buf, size_t len);

/* Closes a connection: after flushing what is queued (immediately == 0) or
 * at once (immediately != 0; a listener's port is free again on return). */
MGFFI_API int mgffi_close(mgffi_manager *m, uint64_t id, int immediately);

/* Half-closes a TCP connection: once the queued data is sent, no more is
 * sent (shutdown(SHUT_WR)); reading goes on until the peer closes. */
MGFFI_API int mgffi_shutdown_write(mgffi_manager *m, uint64_t id);

/* Sends one UDP datagram from connection id (a udp:// listener or client)
 * to the address to (e.g. the remote of a READ event). */
MGFFI_API int mgffi_udp_send_to(mgffi_manager *m, uint64_t id, const mgffi_addr *to,
                                const void *buf, size_t len);

/* Stops (paused != 0) or resumes reading from a connection. A paused
 * connection costs no CPU while it waits, also with output queued. */
MGFFI_API int mgffi_pause_reading(mgffi_manager *m, uint64_t id, int paused);

/* Fills *info with what the glue knows of connection id. */
MGFFI_API int mgffi_get_conn_info(mgffi_manager *m, uint64_t id, mgffi_conn_info *info);

/* Parses "1.2.3.4:80" or "[::1]:80" into *out. */
MGFFI_API int mgffi_addr_parse(const char *text, size_t len, mgffi_addr *out);

/* Formats an address as "1.2.3.4:80" or "[::1]:80" (with_port != 0) or the
 * bare IP into buf (NUL-terminated). Returns the length written, or
 * MGFFI_ERR_ARG / MGFFI_ERR_SPACE. */
MGFFI_API int mgffi_addr_format(const mgffi_addr *addr, int with_port, char *buf, size_t len);

/* ======================================================================
 * HTTP server replies
 * Each answers the pending request of an accepted HTTP connection.
 * ====================================================================== */
/* Sends a whole response: status line, headers (a block of "Name: value\r\n"
 * lines, may be empty), Content-Length and body. 1xx, 204 and 304 replies
 * get no Content-Length and must have an empty body. */
MGFFI_API int mgffi_http_reply(mgffi_manager *m, uint64_t id, int status, const char *headers,
                               size_t headers_len, const char *body, size_t body_len);

/* Starts a chunked response (HTTP/1.0 clients: a body ended by closing);
 * continue with mgffi_http_write_chunk, end with mgffi_http_end_chunked. */
MGFFI_API int mgffi_http_begin_chunked(mgffi_manager *m, uint64_t id, int status,
                                       const char *headers, size_t headers_len);
MGFFI_API int mgffi_http_write_chunk(mgffi_manager *m, uint64_t id, const char *buf, size_t len);
MGFFI_API int mgffi_http_end_chunked(mgffi_manager *m, uint64_t id);

/* Options of mgffi_http_serve_dir and mgffi_http_serve_file. A zeroed
 * struct (or NULL) is the strictest server: no index file, no listing, no
 * dotfiles, no symbolic link out of the root, no compressed variants. */
enum mgffi_serve_flags {
  MGFFI_SERVE_LISTING = 1u << 0,       /* serve_dir: an HTML listing for a
                                          directory without an index file
                                          (else 404) */
  MGFFI_SERVE_DOTFILES = 1u << 1,      /* serve_dir: serve paths with a
                                          segment starting with '.' (else 404) */
  MGFFI_SERVE_SYMLINKS_ANY = 1u << 2,  /* serve_dir: follow symbolic links
                                          anywhere (else only links whose
                                          target stays under root) */
  MGFFI_SERVE_SYMLINKS_NONE = 1u << 3, /* serve_dir: refuse every path that
                                          goes through a symbolic link */
  MGFFI_SERVE_FALLTHROUGH = 1u << 4    /* when the answer would be 404: send
                                          nothing and return 0 (the request
                                          still waits for a reply) */
};

typedef struct mgffi_serve_opts {
  uint32_t flags;          /* enum mgffi_serve_flags */
  uint32_t reserved;       /* 0 */
  mgffi_str headers;       /* "Name: value\r\n" lines added to every reply */
  mgffi_str path;          /* serve_dir: the path to look up under root,
                              already URL-decoded ("/css/a.css"); empty: the
                              request's path, URL-decoded */
  mgffi_str index;         /* serve_dir: index file names for a directory,
                              comma-separated ("index.html,index.htm") */
  mgffi_str mime_types;    /* "ext=type,..." before the built-in table */
  mgffi_str cache_control; /* rules "pattern\tvalue\n"...: the first glob
                              pattern ('*' matches across '/') matching "/"
                              + the path under root (serve_file: the path)
                              gives the Cache-Control value */
  mgffi_str precompressed; /* content codings whose variant files are
                              looked for next to a file, in order of
                              preference: "br,gzip" (file.br, file.gz) */
  mgffi_str spa_fallback;  /* serve_dir: a file under root served for a
                              path that does not exist and whose last
                              segment has no '.' ("index.html") */
} mgffi_serve_opts;

/* Serves the pending request (GET or HEAD; other methods get 405) from the
 * directory root: the path is URL-decoded and normalised (".." above root:
 * 400), a directory without a trailing '/' is redirected (301) to it, a
 * directory gets its index file (or a listing); MIME type by extension,
 * ETag, Last-Modified, conditional requests, one byte range (RFC 9110),
 * compressed variants by Accept-Encoding with Vary. Plain HTTP bodies go
 * out with sendfile(2) as the socket takes them; TLS reads them into the
 * send buffer. Returns the status of the reply (200, 206, 301, 304, 400,
 * 403, 404, 405, 412, 416, 500 or 503), 0 (MGFFI_SERVE_FALLTHROUGH and no
 * file: nothing sent), or MGFFI_ERR_*. *body_len (may be NULL) gets the
 * bytes of body the reply carries (0 for HEAD). */
MGFFI_API int mgffi_http_serve_dir(mgffi_manager *m, uint64_t id, const char *root, size_t root_len,
                                   const mgffi_serve_opts *opts, uint64_t *body_len);
/* The same for the single file path, whatever the request path (the
 * serve_dir-only options are ignored; symbolic links are followed). */
MGFFI_API int mgffi_http_serve_file(mgffi_manager *m, uint64_t id, const char *path,
                                    size_t path_len, const mgffi_serve_opts *opts,
                                    uint64_t *body_len);

/* The manager's open-file cache of the static server: at most max_entries
 * files (descriptors and what fstat said, also "no such file"), each
 * trusted for valid_ms before it is checked again, dropped after
 * inactive_ms unused (defaults 256, 1000, 10000). max_entries 0: no cache
 * (a file is opened per reply and closed once sent). */
MGFFI_API int mgffi_set_file_cache(mgffi_manager *m, uint32_t max_entries, uint32_t valid_ms,
                                   uint32_t inactive_ms);

/* URL-decodes src into dst (form != 0 also decodes '+' as a space) and
 * NUL-terminates it. Returns the decoded length, MGFFI_ERR_ARG for a '%'
 * not followed by two hex digits (or a NULL or empty buffer), or
 * MGFFI_ERR_SPACE when dst is too short (src_len + 1 bytes always do). */
MGFFI_API int mgffi_url_decode(const char *src, size_t src_len, char *dst, size_t dst_len,
                               int form);

/* Splits the HTTP head at p (a request or status line and its headers,
 * through the blank line) as the server does: out's views point into p
 * (body empty, content_length 0). Returns the head's length, 0 when
 * incomplete, or MGFFI_ERR_ARG when it is not an HTTP head. */
MGFFI_API int mgffi_http_parse_head(const char *p, size_t len, mgffi_http_message *out);

/* ======================================================================
 * WebSocket
 * ====================================================================== */
/* Upgrades the pending HTTP request to a WebSocket (101 reply, then WS_OPEN).
 * extra_headers: "Name: value\r\n" lines (e.g. Sec-WebSocket-Protocol).
 * A request that is not a valid handshake gets 400 and MGFFI_ERR_STATE. */
MGFFI_API int mgffi_ws_upgrade(mgffi_manager *m, uint64_t id, const char *extra_headers,
                               size_t extra_len);

/* The head of the upgrade request of server WebSocket id, kept in C while
 * it is open (and attached to its CLOSE event). MGFFI_ERR_STATE otherwise. */
MGFFI_API int mgffi_ws_request_head(mgffi_manager *m, uint64_t id, mgffi_str *head);

/* Opens a WebSocket client connection to url ("ws://host:port/path");
 * extra_headers go into the handshake request. WS_OPEN (http: the 101
 * response) or ERROR + CLOSE follows. */
MGFFI_API int mgffi_ws_connect(mgffi_manager *m, const char *url, size_t url_len,
                               const char *extra_headers, size_t extra_len, uint64_t *id);

/* Sends one WebSocket message; op: 1 text, 2 binary, 8 close, 9 ping, 10
 * pong. A text or binary message is compressed when permessage-deflate was
 * agreed (and it is at least min_size bytes), and sent in fragments when it
 * is over MGFFI_LIMIT_WS_FRAGMENT_SIZE. MGFFI_ERR_FULL when the send queue
 * is at its limit; MGFFI_ERR_STATE while a message is being streamed with
 * mgffi_ws_send_frame; MGFFI_ERR_ARG for another op, or a control frame
 * (8-10) over 125 bytes. */
MGFFI_API int mgffi_ws_send(mgffi_manager *m, uint64_t id, const void *buf, size_t len, int op);

/* Sends a message piece by piece: the first frame with op 1 (text) or 2
 * (binary), the others with op 0 (continuation); fin != 0 ends the
 * message. Streamed messages are not compressed; control frames may be
 * sent in between. MGFFI_ERR_FULL when the send queue is at its limit (the
 * frame is not sent: try again once it has drained); MGFFI_ERR_STATE for a
 * continuation without a message, or a new message inside one;
 * MGFFI_ERR_ARG for another op. */
MGFFI_API int mgffi_ws_send_frame(mgffi_manager *m, uint64_t id, const void *buf, size_t len,
                                  int op, int fin);

/* permessage-deflate (RFC 7692) wanted by a listener (for the WebSockets it
 * upgrades later; HTTP listeners have it on by default) or a WebSocket
 * client (set right after mgffi_ws_connect, before its handshake request
 * goes out; off by default: MGFFI_ERR_STATE once it has). Unless
 * context_takeover is set, the server answers every offer with
 * server_no_context_takeover and client_no_context_takeover, so idle
 * WebSockets hold no zlib state. */
typedef struct mgffi_ws_deflate {
  uint32_t enabled;          /* 0: never negotiated */
  int32_t level;             /* zlib level 0-9 (default 1) */
  uint32_t context_takeover; /* keep the compression context between messages
                                when the peer allows it */
  uint32_t max_window_bits;  /* 9-15: our compressor's window (default 15) */
  uint64_t min_size;         /* shorter messages go out uncompressed (64) */
} mgffi_ws_deflate;

MGFFI_API int mgffi_ws_set_deflate(mgffi_manager *m, uint64_t id, const mgffi_ws_deflate *config);

/* ======================================================================
 * TLS (when the library is built with a TLS backend)
 * Sets the TLS parameters of a connection; for a listener they apply to
 * every connection it accepts later (https://, wss://, tls:// URLs), for a
 * client (mgffi_connect / mgffi_ws_connect) to its handshake. Strings are
 * PEM (or DER) bytes, not file names; empty means "none":
 *   ca:   server: CA that client certificates must chain to (requires
 *         client certificates); client: CA that verifies the server.
 *   cert, key: our certificate and private key (server: required).
 *   name: client: the host name to verify and send as SNI.
 *   skip_verification: client: do not verify the server (tests only).
 * A plain tcp:// client that is already connected starts its handshake at
 * once (STARTTLS, a cosocket's sslhandshake); MGFFI_EV_TLS_HS (in its
 * event mask) follows when the handshake is done.
 * A handshake failure is an ERROR event on that connection only.
 * Returns MGFFI_ERR_STATE when the build has no TLS.
 * ====================================================================== */
MGFFI_API int mgffi_tls_set(mgffi_manager *m, uint64_t id, const char *ca, size_t ca_len,
                            const char *cert, size_t cert_len, const char *key, size_t key_len,
                            const char *name, size_t name_len, int skip_verification);

/* The TLS backend compiled in: "none", "openssl" or "builtin". */
MGFFI_API const char *mgffi_tls_backend(void);

/* ======================================================================
 * Web helpers (mongoose.web): Mongoose's HMAC-SHA256, base64 and HTTP
 * credentials, for signed cookies and authentication. No manager, no
 * connection: pure functions of their arguments. Every buffer is a
 * pointer and a length; results are written to caller-owned buffers.
 * ====================================================================== */
/* HMAC-SHA256 of data under key into out (out_len must be at least 32).
 * Returns MGFFI_OK, MGFFI_ERR_ARG (NULL with a length) or MGFFI_ERR_SPACE. */
MGFFI_API int mgffi_hmac_sha256(const void *key, size_t key_len, const void *data, size_t data_len,
                                uint8_t *out, size_t out_len);
/* Base64 of src into dst; url != 0: the URL alphabet ('-', '_') without
 * padding. *out_len gets the length written (dst is also NUL-terminated).
 * Returns MGFFI_OK, MGFFI_ERR_ARG or MGFFI_ERR_SPACE (dst_len below
 * 4 * ceil(src_len / 3) + 1). */
MGFFI_API int mgffi_base64_encode(const void *src, size_t src_len, int url, char *dst,
                                  size_t dst_len, size_t *out_len);
/* Decodes base64 of either alphabet, padded or not, into dst. Returns
 * MGFFI_OK, MGFFI_ERR_ARG (not base64) or MGFFI_ERR_SPACE (dst_len below
 * 3 * ceil(src_len / 4) + 1). */
MGFFI_API int mgffi_base64_decode(const char *src, size_t src_len, void *dst, size_t dst_len,
                                  size_t *out_len);
/* The credentials of an Authorization header value, as Mongoose's
 * mg_http_creds reads them: "Basic <base64 user:pass>" gives user and
 * password, "Bearer <token>" the token in pass (user empty). Both are
 * NUL-terminated and cut to their buffers (Mongoose decodes at most 255
 * bytes of Basic credentials). Returns 1 (Basic), 2 (Bearer), 0 (neither),
 * or MGFFI_ERR_ARG (a buffer of length 0). */
MGFFI_API int mgffi_http_creds(const char *authorization, size_t auth_len, char *user,
                               size_t user_len, char *pass, size_t pass_len);

/* ======================================================================
 * Process signals (for a graceful stop; no Lua callback involved)
 * ====================================================================== */
/* Installs a handler for signo that only records it; a later poll returns
 * early. Returns MGFFI_OK or MGFFI_ERR_ARG. */
MGFFI_API int mgffi_signal_watch(int signo);
/* Returns the lowest-numbered recorded signal and forgets it, or 0 (a
 * signal delivered several times before this call counts once). */
MGFFI_API int mgffi_signal_take(void);

/* ======================================================================
 * Message digests (mongoose.ngx: ngx.md5, ngx.sha1_bin, ngx.hmac_sha1):
 * Mongoose's MD5 and SHA-1 of len bytes at data into out (16 and 20 bytes).
 * Returns MGFFI_OK, MGFFI_ERR_ARG (NULL data with a length, NULL out) or
 * MGFFI_ERR_SPACE (out_len too small).
 * ====================================================================== */
MGFFI_API int mgffi_md5(const void *data, size_t len, uint8_t *out, size_t out_len);
MGFFI_API int mgffi_sha1(const void *data, size_t len, uint8_t *out, size_t out_len);

#ifdef __cplusplus
}
#endif

#endif /* MONGOOSE_FFI_H */
