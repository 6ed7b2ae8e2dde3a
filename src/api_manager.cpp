// The C ABI of the manager: life, polling, the registry, process limits
// and signals.
#if !defined(_WIN32)
#include <sys/resource.h>
#endif

#include <csignal>
#include <cstring>

#include "api_support.hpp"

using mgffi::Manager;

namespace {

// Signals recorded by mgffi_signal_watch's handler: async-signal-safe flags.
volatile std::sig_atomic_t g_signal_pending[65];

extern "C" void record_signal(int signo) {
  if (signo > 0 && signo < 65) g_signal_pending[signo] = 1;
#if defined(_WIN32)
  std::signal(signo, record_signal);  // Windows resets the handler at each signal
#endif
}

}  // namespace

extern "C" {

int mgffi_abi_version(void) {
  return MGFFI_ABI_VERSION;
}

const char *mgffi_mongoose_version(void) {
  return MG_VERSION;
}

mgffi_manager *mgffi_manager_new(void) {
  try {
    return new mgffi_manager();
  } catch (...) {
    return nullptr;
  }
}

void mgffi_manager_free(mgffi_manager *m) {
  delete m;
}

int mgffi_poll(mgffi_manager *m, int timeout_ms) {
  return mgffi::guarded(m, "poll", [&] { return m->impl.poll(timeout_ms); });
}

const mgffi_event *mgffi_events(const mgffi_manager *m) {
  return m == nullptr ? nullptr : m->impl.events();
}

int mgffi_manager_fd(const mgffi_manager *m) {
  return m == nullptr ? -1 : m->impl.epoll_fd();
}

int mgffi_poll_hint(const mgffi_manager *m) {
  if (m == nullptr) return -1;
  try {
    return const_cast<mgffi_manager *>(m)->impl.poll_hint();
  } catch (...) {
    return 0;
  }
}

const char *mgffi_last_error(const mgffi_manager *m) {
  return m == nullptr ? "no manager" : m->impl.last_error();
}

uint64_t mgffi_millis(void) {
  return mg_millis();
}

void mgffi_log_set_level(int level) {
  if (level < MG_LL_NONE) level = MG_LL_NONE;
  if (level > MG_LL_VERBOSE) level = MG_LL_VERBOSE;
  mg_log_set(level);
}

size_t mgffi_connection_count(const mgffi_manager *m) {
  return m == nullptr ? 0 : m->impl.connection_count();
}

size_t mgffi_connection_ids(const mgffi_manager *m, uint64_t *ids, size_t cap) {
  if (m == nullptr) return 0;
  return m->impl.connection_ids(ids, ids == nullptr ? 0 : cap);
}

int mgffi_set_max_queue_bytes(mgffi_manager *m, uint64_t max_bytes) {
  if (max_bytes == 0) return mgffi::bad_arg(m, "max_bytes must be positive");
  if (m == nullptr) return MGFFI_ERR_ARG;
  m->impl.set_max_queue_bytes(max_bytes);
  return MGFFI_OK;
}

int64_t mgffi_fd_limit(int raise) {
#if defined(_WIN32)
  (void)raise;
  return INT64_MAX;  // Winsock has no per-process descriptor limit
#else
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return MGFFI_ERR_STATE;
  if (raise != 0 && rl.rlim_cur < rl.rlim_max) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  return rl.rlim_cur == RLIM_INFINITY ? INT64_MAX : static_cast<int64_t>(rl.rlim_cur);
#endif
}

int mgffi_signal_watch(int signo) {
  if (signo <= 0 || signo >= 65) return MGFFI_ERR_ARG;
#if defined(_WIN32)
  // The C runtime's signals: SIGINT (Ctrl+C), SIGBREAK, SIGTERM, SIGABRT...
  if (std::signal(signo, record_signal) == SIG_ERR) return MGFFI_ERR_ARG;
#else
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = record_signal;
  sigemptyset(&sa.sa_mask);
  if (sigaction(signo, &sa, nullptr) != 0) return MGFFI_ERR_ARG;
#endif
  return MGFFI_OK;
}

int mgffi_signal_take(void) {
  for (int s = 1; s < 65; s++) {
    if (g_signal_pending[s]) {
      g_signal_pending[s] = 0;
      return s;
    }
  }
  return 0;
}

}  // extern "C"
