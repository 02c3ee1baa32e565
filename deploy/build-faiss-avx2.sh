#!/usr/bin/env bash
# Builds Debian 12's own FAISS source package (faiss 1.7.3-2 from deb.debian.org, checked against
# the checksums of its .dsc, Debian's patches applied) with AVX2 and FMA into /opt/faiss-avx2,
# which CMake then prefers to libfaiss-dev. Debian's binary package is a baseline x86-64 build whose
# distance kernels run scalar; the same source built for AVX2 serves IVF searches 2-3x faster
# (README "Index"). Idempotent: skipped when already built, and when this CPU lacks AVX2 or FMA
# (libfaiss-dev serves then). The binaries built against it need an AVX2 CPU.
# HIER_FAISS_AVX2=0 skips it on any CPU (a baseline image: deploy/Dockerfile's build argument).
set -euo pipefail
version=1.7.3
revision=2
prefix="${HIER_FAISS_AVX2_PREFIX:-/opt/faiss-avx2}"
stamp="$prefix/share/faiss_${version}-${revision}-avx2.built"

case "${HIER_FAISS_AVX2:-auto}" in
  auto) ;;
  0)
    echo "build-faiss-avx2: skipped (HIER_FAISS_AVX2=0); libfaiss-dev is used"
    exit 0
    ;;
  *)
    echo "build-faiss-avx2: HIER_FAISS_AVX2 is auto or 0, not '$HIER_FAISS_AVX2'" >&2
    exit 2
    ;;
esac
if ! grep -qw avx2 /proc/cpuinfo || ! grep -qw fma /proc/cpuinfo; then
  echo "build-faiss-avx2: this CPU has no AVX2/FMA; libfaiss-dev is used"
  exit 0
fi
if [ -f "$stamp" ]; then
  echo "build-faiss-avx2: $prefix already holds faiss $version-$revision (AVX2)"
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then as_root=(sudo); fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pool=http://deb.debian.org/debian/pool/main/f/faiss
orig="faiss_${version}.orig.tar.gz"
debian="faiss_${version}-${revision}.debian.tar.xz"
echo "build-faiss-avx2: fetching $orig and $debian"
curl -fsSL -o "$work/$orig" "$pool/$orig"
curl -fsSL -o "$work/$debian" "$pool/$debian"
# The SHA-256 sums listed in faiss_1.7.3-2.dsc.
(cd "$work" && sha256sum -c --quiet) <<SUMS
3e4fac26d8c9e9008ecea4ae5fc414c658998fce4ba75835058b1a71d3516002  $orig
a351977533afa5575b21de74a58cacb66d846006b1ef971bed85e01e66eb7f94  $debian
SUMS

src="$work/src"
mkdir -p "$src"
tar -xzf "$work/$orig" -C "$src" --strip-components=1
tar -xJf "$work/$debian" -C "$src"
grep -v '^#' "$src/debian/patches/series" | while read -r patch; do
  [ -n "$patch" ] && patch -s -d "$src" -p1 < "$src/debian/patches/$patch"
done

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="-mavx2 -mfma -mf16c -mpopcnt" "${launcher[@]}" \
  -DFAISS_OPT_LEVEL=generic -DFAISS_ENABLE_GPU=OFF -DFAISS_ENABLE_PYTHON=OFF \
  -DFAISS_ENABLE_C_API=OFF -DBUILD_TESTING=OFF -DBUILD_SHARED_LIBS=ON \
  -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
echo "build-faiss-avx2: building (a few minutes)"
cmake --build "$work/build" --parallel "$(nproc)"
"${as_root[@]}" cmake --install "$work/build" >/dev/null
"${as_root[@]}" mkdir -p "$(dirname "$stamp")"
"${as_root[@]}" touch "$stamp"
echo "build-faiss-avx2: installed into $prefix"
