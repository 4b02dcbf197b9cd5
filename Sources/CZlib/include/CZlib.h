// zlib for Swift: deflateInit2 and inflateInit2 are macros, which Swift cannot call.
#ifndef TOLLGATE_CZLIB_H
#define TOLLGATE_CZLIB_H
#include <zlib.h>

static inline int tollgate_deflate_init_gzip(z_streamp stream, int level) {
    // windowBits 15 + 16: a gzip wrapper with a zeroed header (no name, no mtime), so the
    // same input always compresses to the same bytes.
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}
static inline int tollgate_inflate_init_gzip(z_streamp stream) {
    return inflateInit2(stream, 15 + 16);
}
#endif
