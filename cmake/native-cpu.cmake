# CMake toolchain file used when cargo builds llama.cpp (llama-cpp-sys-2).
#
# llama-cpp-sys-2 turns llama.cpp's own GGML_NATIVE off and enables only the
# instruction sets Rust itself targets (SSE2 by default), which leaves
# llama.cpp's AVX2/AVX-512 kernels out and makes generation several times
# slower. agentd is built on the machine that runs it (scripts/run,
# scripts/test), so compile llama.cpp for this CPU, as llama.cpp's own build
# and llama-cpp-python do by default. Only CMake-built dependencies read this
# file; every other crate is built as usual.
add_compile_options(-march=native)
