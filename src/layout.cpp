// The size and field offsets of every struct in the C ABI, as compiled, so
// that a test can check the Lua cdefs against the library byte for byte.
#include <cstddef>

#include "mongoose_ffi.h"

#define MGFFI_STRUCT(T) \
  { #T, nullptr, 0, sizeof(T) }
#define MGFFI_FIELD(T, F) \
  { #T, #F, offsetof(T, F), sizeof(((T *)nullptr)->F) }

namespace {

const mgffi_layout_entry kLayout[] = {
    MGFFI_STRUCT(mgffi_str),
    MGFFI_FIELD(mgffi_str, ptr),
    MGFFI_FIELD(mgffi_str, len),
    MGFFI_STRUCT(mgffi_header),
    MGFFI_FIELD(mgffi_header, name),
    MGFFI_FIELD(mgffi_header, value),
    MGFFI_STRUCT(mgffi_http_message),
    MGFFI_FIELD(mgffi_http_message, method),
    MGFFI_FIELD(mgffi_http_message, uri),
    MGFFI_FIELD(mgffi_http_message, query),
    MGFFI_FIELD(mgffi_http_message, proto),
    MGFFI_FIELD(mgffi_http_message, head),
    MGFFI_FIELD(mgffi_http_message, body),
    MGFFI_FIELD(mgffi_http_message, content_length),
    MGFFI_FIELD(mgffi_http_message, status),
    MGFFI_FIELD(mgffi_http_message, header_count),
    MGFFI_FIELD(mgffi_http_message, headers),
    MGFFI_STRUCT(mgffi_addr),
    MGFFI_FIELD(mgffi_addr, ip),
    MGFFI_FIELD(mgffi_addr, port),
    MGFFI_FIELD(mgffi_addr, is_ip6),
    MGFFI_FIELD(mgffi_addr, reserved),
    MGFFI_STRUCT(mgffi_event),
    MGFFI_FIELD(mgffi_event, type),
    MGFFI_FIELD(mgffi_event, flags),
    MGFFI_FIELD(mgffi_event, conn_id),
    MGFFI_FIELD(mgffi_event, listener_id),
    MGFFI_FIELD(mgffi_event, value),
    MGFFI_FIELD(mgffi_event, data),
    MGFFI_FIELD(mgffi_event, http),
    MGFFI_FIELD(mgffi_event, remote),
    MGFFI_STRUCT(mgffi_conn_info),
    MGFFI_FIELD(mgffi_conn_info, id),
    MGFFI_FIELD(mgffi_conn_info, listener_id),
    MGFFI_FIELD(mgffi_conn_info, flags),
    MGFFI_FIELD(mgffi_conn_info, event_mask),
    MGFFI_FIELD(mgffi_conn_info, send_queued),
    MGFFI_FIELD(mgffi_conn_info, recv_buffered),
    MGFFI_FIELD(mgffi_conn_info, local),
    MGFFI_FIELD(mgffi_conn_info, remote),
    MGFFI_FIELD(mgffi_conn_info, fd),
    MGFFI_FIELD(mgffi_conn_info, is_closing),
    MGFFI_FIELD(mgffi_conn_info, is_draining),
    MGFFI_FIELD(mgffi_conn_info, response_pending),
    MGFFI_FIELD(mgffi_conn_info, reading_paused),
    MGFFI_STRUCT(mgffi_layout_entry),
    MGFFI_FIELD(mgffi_layout_entry, type),
    MGFFI_FIELD(mgffi_layout_entry, field),
    MGFFI_FIELD(mgffi_layout_entry, offset),
    MGFFI_FIELD(mgffi_layout_entry, size),
};

}  // namespace

extern "C" const mgffi_layout_entry *mgffi_layout(size_t *count) {
  if (count != nullptr) *count = sizeof(kLayout) / sizeof(kLayout[0]);
  return kLayout;
}
