# Lua tests that do not run under Wine (scripts/test-windows.sh): each
# MGFFI_WINE_SKIP_<test> is the reason CTest shows for it. Tests that can
# tell for themselves (no luv module for this LuaJIT, no OpenResty
# libraries unpacked) skip themselves with T.skip instead.
set(_autobahn "Autobahn's full conformance runs take minutes on Linux and several times that under Wine: kept out of the Windows step's time budget (the library code they test is the same on both)")
set(MGFFI_WINE_SKIP_test_autobahn_client "${_autobahn}")
set(MGFFI_WINE_SKIP_test_autobahn_deflate_client "${_autobahn}")
set(MGFFI_WINE_SKIP_test_autobahn_server "${_autobahn}")
set(MGFFI_WINE_SKIP_test_autobahn_deflate_server "${_autobahn}")
set(_browser "drives the Linux chromium against the server: kept out of the Windows step's time budget")
set(MGFFI_WINE_SKIP_test_browser "${_browser}")
set(MGFFI_WINE_SKIP_test_browser_websocket "${_browser}")
set(_sigterm "stops the example servers with SIGTERM: a Linux signal ends a Wine process at once (exit 143) instead of reaching mgr:run's signal handling, which on Windows takes the C runtime's SIGINT/SIGTERM")
set(MGFFI_WINE_SKIP_test_examples "${_sigterm}")
set(MGFFI_WINE_SKIP_test_examples_chat "${_sigterm}")
set(MGFFI_WINE_SKIP_test_examples_default_port "${_sigterm}")
set(MGFFI_WINE_SKIP_test_examples_tls "${_sigterm}")
set(MGFFI_WINE_SKIP_test_hostile_io "servers under ulimit -n and ulimit -v, stopped with SIGTERM, CPU bounds from /proc: POSIX process limits and signals that do not apply to a Windows process")
set(MGFFI_WINE_SKIP_test_scale "4000 idle connections at bounded memory: relies on parking idle connections in the glue's epoll set (no epoll on Windows) and on Linux RSS figures")
set(_luv "no luv (libuv) module for this Windows LuaJIT is built here; mongoose.luv's interval mode would work with one, its epoll mode cannot (docs/windows.md)")
set(MGFFI_WINE_SKIP_test_luv "${_luv}")
set(MGFFI_WINE_SKIP_test_luv_attach "${_luv}")
set(MGFFI_WINE_SKIP_test_static_luv "${_luv}")
set(MGFFI_WINE_SKIP_test_examples_luv "${_luv}")
