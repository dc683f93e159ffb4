#include <stddef.h>
#include <stdint.h>
#include <lz4.h>
#include <lz4frame.h>
#include <zlib.h>

// libFuzzer's driver (compiler-rt, linked by -sanitize=fuzzer). SwiftPM's debug builds on Linux
// point `main` at `<Target>_main` (so that tests can link executables); each fuzzer defines
// that symbol and hands over to the driver here.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
