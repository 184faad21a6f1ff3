# Run by `cmake --install` (and CPack): the man pages generated at build time name the docs as
# __MAILTAP_DOCDIR__/docs/...; the installed documentation's directory is only known now (the
# install prefix), so it is put in here, then each page is gzipped as Debian ships them (-n: no
# name or time stamp, reproducible). Needs MAILTAP_MAN_SOURCE, MAILTAP_MAN_WORK, MAILTAP_DOCDIR,
# MAILTAP_MANDIR (relative to the prefix, or absolute).
foreach(dir IN ITEMS MAILTAP_DOCDIR MAILTAP_MANDIR)
  if(NOT IS_ABSOLUTE "${${dir}}")
    set(${dir} "${CMAKE_INSTALL_PREFIX}/${${dir}}")
  endif()
endforeach()
file(REMOVE_RECURSE "${MAILTAP_MAN_WORK}")
file(MAKE_DIRECTORY "${MAILTAP_MAN_WORK}")
file(GLOB pages "${MAILTAP_MAN_SOURCE}/*.1")
set(compressed "")
foreach(page IN LISTS pages)
  get_filename_component(name "${page}" NAME)
  file(READ "${page}" text)
  string(REPLACE "__MAILTAP_DOCDIR__" "${MAILTAP_DOCDIR}" text "${text}")
  file(WRITE "${MAILTAP_MAN_WORK}/${name}" "${text}")
  execute_process(COMMAND gzip -9nf "${MAILTAP_MAN_WORK}/${name}" COMMAND_ERROR_IS_FATAL ANY)
  list(APPEND compressed "${MAILTAP_MAN_WORK}/${name}.gz")
endforeach()
file(INSTALL DESTINATION "${MAILTAP_MANDIR}/man1" TYPE FILE FILES ${compressed})
