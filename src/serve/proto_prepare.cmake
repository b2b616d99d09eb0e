# proto_prepare.cmake — run at build time (cmake -P) before protoc-c.
# Copies the TF Serving .proto files listed in FILES from SRC (the shared,
# read-only copy) to DST, dropping the proto3 `optional` label that Debian's
# protoc-c 1.4 rejects. Only proto3 files are rewritten; proto2 files keep
# their `optional`. On the wire nothing changes: only has-presence tracking of
# those few fields is lost. A file is rewritten only when its content changes,
# so protoc-c does not rerun needlessly.
foreach(rel ${FILES})
  file(READ "${SRC}/${rel}" text)
  if(text MATCHES "syntax[ \t]*=[ \t]*\"proto3\"")
    string(REGEX REPLACE "(\n[ \t]*)optional[ \t]+" "\\1" text "${text}")
  endif()
  set(out "${DST}/${rel}")
  set(old "")
  if(EXISTS "${out}")
    file(READ "${out}" old)
  endif()
  if(NOT old STREQUAL text)
    file(WRITE "${out}" "${text}")
  endif()
endforeach()
