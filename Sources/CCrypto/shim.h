#ifndef SLICESYNC_CCRYPTO_SHIM_H
#define SLICESYNC_CCRYPTO_SHIM_H
#include <openssl/sha.h>
#include <openssl/md5.h>
#include <openssl/evp.h>
#endif
