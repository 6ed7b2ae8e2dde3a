# mgffi_write_script(PATH TEXT): writes TEXT to PATH as an executable shell
# script (file(WRITE) cannot set permissions: it is written under
# CMakeFiles/ and copied with them). The tests' LuaJIT wrappers use it.
function(mgffi_write_script path text)
  get_filename_component(_name ${path} NAME)
  get_filename_component(_dir ${path} DIRECTORY)
  file(WRITE ${CMAKE_BINARY_DIR}/CMakeFiles/${_name} "${text}")
  file(COPY ${CMAKE_BINARY_DIR}/CMakeFiles/${_name} DESTINATION ${_dir}
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
       WORLD_READ WORLD_EXECUTE)
endfunction()
