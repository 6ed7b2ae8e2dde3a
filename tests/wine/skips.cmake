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
