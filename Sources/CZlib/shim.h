#ifndef SLICESYNC_CZLIB_SHIM_H
#define SLICESYNC_CZLIB_SHIM_H
#include <zlib.h>
#endif
