# Cross-compiling for 64-bit Windows with Debian's mingw-w64 (the -posix
# thread variant, for std::mutex). scripts/test-windows.sh uses it:
#   cmake -S . -B build-windows -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake -DMGFFI_TLS=builtin
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(MGFFI_MINGW_TRIPLET x86_64-w64-mingw32 CACHE STRING "The mingw-w64 target triplet")
set(CMAKE_C_COMPILER ${MGFFI_MINGW_TRIPLET}-gcc-posix)
set(CMAKE_CXX_COMPILER ${MGFFI_MINGW_TRIPLET}-g++-posix)
set(CMAKE_RC_COMPILER ${MGFFI_MINGW_TRIPLET}-windres)
set(CMAKE_FIND_ROOT_PATH /usr/${MGFFI_MINGW_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# zlib linked in (Debian's libz-mingw-w64-dev), so the DLL needs no zlib1.dll.
set(ZLIB_LIBRARY /usr/${MGFFI_MINGW_TRIPLET}/lib/libz.a CACHE FILEPATH "zlib for the target")
