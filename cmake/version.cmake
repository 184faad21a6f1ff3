# The version `mailtap --version`, the man pages, each database's created_by and the .deb carry.
# Built from a git checkout it is PROJECT_VERSION+git<date>.<count>.<hash> (the commit's date in
# UTC, the number of commits up to it, its short hash), so that every later build is an upgrade
# for dpkg and apt, and an admin can tell builds apart. Everything comes from the commit, nothing
# from the clock: building one commit twice gives the same version. Without git or a .git
# directory (a source tarball, a machine without git) it is PROJECT_VERSION alone, or whatever
# -DMAILTAP_VERSION= gives. Sets MAILTAP_VERSION and MAILTAP_VERSION_DATE (the commit's date,
# RFC 5322, for the Debian changelog).
set(MAILTAP_VERSION "" CACHE STRING
    "Version to build instead of the one derived from git (empty: derive it)")
set(MAILTAP_FALLBACK_DATE "Thu, 01 Jan 2026 00:00:00 +0000")

function(mailtap_git_version out_version out_date)
  set(${out_version} "" PARENT_SCOPE)
  set(${out_date} "" PARENT_SCOPE)
  find_package(Git QUIET)
  if(NOT GIT_FOUND)
    return()
  endif()
  set(git ${GIT_EXECUTABLE} -C ${CMAKE_CURRENT_SOURCE_DIR})
  # Only this source tree's own repository: not one that merely contains it.
  execute_process(COMMAND ${git} rev-parse --show-toplevel OUTPUT_VARIABLE top
                  RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_VARIABLE why)
  if(NOT rc EQUAL 0)
    # A checkout git will not read (another user's: "dubious ownership") still has a history:
    # the plain version would sort below every build from git, so say why it is used.
    if(EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/.git")
      string(STRIP "${why}" why)
      message(WARNING "mailtap: git cannot read this checkout, so the version is the plain "
                      "${PROJECT_VERSION} (dpkg sorts it below builds from git): ${why}")
    endif()
    return()
  endif()
  file(REAL_PATH "${top}" top)
  file(REAL_PATH "${CMAKE_CURRENT_SOURCE_DIR}" source)
  if(NOT top STREQUAL source)
    return()
  endif()
  set(ENV{TZ} UTC0)
  # A fixed hash length: git's default grows with the repository, so two clones could differ.
  execute_process(COMMAND ${git} log -1 --abbrev=12 --format=%cd.%h --date=format-local:%Y%m%d
                  OUTPUT_VARIABLE date_hash RESULT_VARIABLE rc1
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  execute_process(COMMAND ${git} rev-list --count HEAD OUTPUT_VARIABLE count RESULT_VARIABLE rc2
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  execute_process(COMMAND ${git} log -1 --format=%cD OUTPUT_VARIABLE date RESULT_VARIABLE rc3
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  unset(ENV{TZ})
  execute_process(COMMAND ${git} rev-parse --is-shallow-repository OUTPUT_VARIABLE shallow
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(shallow STREQUAL "true")
    message(WARNING "mailtap: a shallow clone counts only the commits it holds, so this "
                    "version does not sort after older builds; `git fetch --unshallow` first "
                    "for a package to upgrade with")
  endif()
  if(NOT (rc1 EQUAL 0 AND rc2 EQUAL 0 AND rc3 EQUAL 0)
     OR NOT date_hash MATCHES "^([0-9]+)\\.([0-9a-f]+)$")
    return()
  endif()
  set(${out_version} "${PROJECT_VERSION}+git${CMAKE_MATCH_1}.${count}.${CMAKE_MATCH_2}"
      PARENT_SCOPE)
  set(${out_date} "${date}" PARENT_SCOPE)

  # Configure again when HEAD moves (a commit, a checkout), so the version follows it. (Not in
  # script mode, `cmake -P`, where tests/install runs this file.)
  if(CMAKE_SCRIPT_MODE_FILE)
    return()
  endif()
  set(watched HEAD logs/HEAD packed-refs)  # logs/HEAD: every commit, checkout, reset
  execute_process(COMMAND ${git} symbolic-ref -q HEAD OUTPUT_VARIABLE branch
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(branch)
    list(APPEND watched ${branch})
  endif()
  foreach(name IN LISTS watched)
    execute_process(COMMAND ${git} rev-parse --path-format=absolute --git-path ${name}
                    OUTPUT_VARIABLE path OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(path AND EXISTS "${path}")
      set_property(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
                   "${path}")
    endif()
  endforeach()
endfunction()

if(MAILTAP_VERSION)
  set(MAILTAP_VERSION_DATE "${MAILTAP_FALLBACK_DATE}")
else()
  mailtap_git_version(MAILTAP_VERSION MAILTAP_VERSION_DATE)
  if(NOT MAILTAP_VERSION)
    set(MAILTAP_VERSION "${PROJECT_VERSION}")
    set(MAILTAP_VERSION_DATE "${MAILTAP_FALLBACK_DATE}")
  endif()
endif()
message(STATUS "mailtap version ${MAILTAP_VERSION}")
