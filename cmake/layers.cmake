# Layers (docs/design.md, "Layers"): one static library per layer, compiling the .cpp files of
# its rooms (a room is one folder, not its subfolders) and linking only layers below it.
#
#   mailtap_layer(NAME ROOMS folder... [SOURCES file...] [PUBLIC dep...] [PRIVATE dep...])
#
# A link is PUBLIC only where the lower layer's types appear in this layer's headers; the call
# says which. Every layer is recorded in <build>/layers.txt (`target|room,...|dep,...`), which
# tests/layers_test.py reads to check that each #include names a header of the file's own
# layer or of one below it: the links here and the rule the test applies are the same table.

set_property(GLOBAL PROPERTY MAILTAP_LAYERS "")

# Records a target (a layer, or the executable) for layers.txt; only mailtap's own layers count
# as dependencies (not mailtap_asio or system libraries).
function(mailtap_record_layer name rooms)
  set(deps)
  foreach(dep IN LISTS ARGN)
    if(dep MATCHES "^mailtap_" AND NOT dep STREQUAL "mailtap_asio")
      list(APPEND deps ${dep})
    endif()
  endforeach()
  string(REPLACE ";" "," rooms "${rooms}")
  string(REPLACE ";" "," deps "${deps}")
  set_property(GLOBAL APPEND PROPERTY MAILTAP_LAYERS "${name}|${rooms}|${deps}")
endfunction()

function(mailtap_layer name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "ROOMS;SOURCES;PUBLIC;PRIVATE")
  set(patterns)
  foreach(room IN LISTS arg_ROOMS)
    list(APPEND patterns ${PROJECT_SOURCE_DIR}/${room}/*.cpp)
  endforeach()
  file(GLOB sources CONFIGURE_DEPENDS ${patterns})
  add_library(${name} STATIC ${sources} ${arg_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${arg_PUBLIC} PRIVATE ${arg_PRIVATE})
  mailtap_record_layer(${name} "${arg_ROOMS}" ${arg_PUBLIC} ${arg_PRIVATE})
endfunction()

# Call once, after the last layer and the executable.
function(mailtap_write_layers)
  get_property(layers GLOBAL PROPERTY MAILTAP_LAYERS)
  string(JOIN "\n" text ${layers})
  file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/layers.txt CONTENT "${text}\n" @ONLY)
endfunction()
