# Writes OUT, a header with the version and the source's git commit (with "-dirty" when the
# work tree has changes), at every build; the file changes only when they do.
# Run as: cmake -DSOURCE_DIR=... -DOUT=... -DVERSION=... -P build_info.cmake
execute_process(COMMAND git -C "${SOURCE_DIR}" rev-parse --short=12 HEAD
                OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE
                RESULT_VARIABLE failed ERROR_QUIET)
if(failed)
  set(commit "unknown")
else()
  execute_process(COMMAND git -C "${SOURCE_DIR}" diff --quiet HEAD RESULT_VARIABLE dirty
                  ERROR_QUIET)
  if(dirty)
    string(APPEND commit "-dirty")
  endif()
endif()
file(WRITE "${OUT}.tmp"
     "// Written by cmake/build_info.cmake at every build: what `diloco train` logs first.\n"
     "#pragma once\n"
     "#define DILOCO_VERSION \"${VERSION}\"\n"
     "#define DILOCO_GIT_COMMIT \"${commit}\"\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
