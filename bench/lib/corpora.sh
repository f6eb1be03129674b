# Sourced by the benchmarks: the rebuild corpora, made once and kept in WORK.
#
#   make_corpora WORK    WORK/old/C.bin and WORK/pub/C/new.bin for the cases a b c d (256 MiB each:
#                        10 scattered edits, insertions and deletions, 8 MiB appended, unrelated), t (the
#                        uncompressed sdists of botocore 1.35.0 and 1.35.1 from PyPI) and z (the same,
#                        .tar.gz as published).
# (The body is not indented: its Python here-document must start in the first column.)
make_corpora() {
local work=$1
base="$work/base.bin"
if [ ! -f "$base" ] || [ "$(stat -c %s "$base")" -ne $((256 << 20)) ]; then
  (openssl enc -aes-128-ctr -pass pass:slicesync-base -nosalt -pbkdf2 </dev/zero 2>/dev/null || true) | head -c $((256 << 20)) >"$base"
fi
mkdir -p "$work/pub"/{a,b,c,d,t,z} "$work/old"
python3 - "$work" <<'PY'
import os, random, sys
work = sys.argv[1]
base = open(os.path.join(work, "base.bin"), "rb").read()
rng = random.Random(2026)
def noise(n):
    return b"".join(rng.randbytes(min(1 << 20, n - k)) for k in range(0, n, 1 << 20))
def write(case, data):
    path = os.path.join(work, "pub", case, "new.bin")
    if not os.path.exists(path) or os.path.getsize(path) != len(data):
        open(path, "wb").write(data)
a = bytearray(base)
for _ in range(10):
    p = rng.randrange(len(a) - 100)
    a[p:p + 100] = rng.randbytes(100)
write("a", bytes(a))
b = bytearray(base)
for _ in range(10):
    p = rng.randrange(len(b)); b[p:p] = rng.randbytes(rng.randint(1, 1000))
    p = rng.randrange(len(b) - 1000); del b[p:p + rng.randint(1, 1000)]
write("b", bytes(b))
write("c", base + noise(8 << 20))
write("d", noise(len(base)))
PY
for c in a b c d; do ln -sf "$base" "$work/old/$c.bin"; done
if [ ! -f "$work/old/t.bin" ]; then
  mkdir -p "$work/pypi"
  for v in 1.35.0 1.35.1; do
    [ -f "$work/pypi/botocore-$v.tar" ] && continue
    pip download --quiet --no-deps --no-binary :all: "botocore==$v" -d "$work/pypi" >&2
    gunzip -c "$work/pypi/botocore-$v.tar.gz" >"$work/pypi/botocore-$v.tar"
  done
  cp "$work/pypi/botocore-1.35.1.tar" "$work/pub/t/new.bin"
  cp "$work/pypi/botocore-1.35.0.tar" "$work/old/t.bin"
fi
if [ ! -f "$work/old/z.bin" ]; then
  cp "$work/pypi/botocore-1.35.1.tar.gz" "$work/pub/z/new.bin"
  cp "$work/pypi/botocore-1.35.0.tar.gz" "$work/old/z.bin"
fi
touch -d '1 hour ago' "$work"/pub/*/new.bin
}
