#!/usr/bin/env bash
# Builds the snowpipe-kafka image without a container registry: no builder image and no base
# image to pull. Instead:
#   1. the release binary is built on this machine (the `tls` feature), as
#      kafka/Containerfile's builder would build it;
#   2. a base image is made from Debian packages: the packages owning the libraries the binary
#      links (ldd), and ca-certificates, are downloaded with `apt-get download` and unpacked
#      with `dpkg-deb -x`; the root filesystem gets only those libraries, the CA bundle, their
#      copyright files, and /etc/passwd and /etc/group with a `nonroot` user 65532; then
#      `podman import`;
#   3. `podman build` builds the Containerfile's `runtime-prebuilt` target on that base.
#
# Run from anywhere, as root, on Debian (or Ubuntu) with podman and runc
# (kafka/container/setup-podman.sh installs and configures them). See kafka/docs/image.md.
#
# Environment:
#   IMAGE        the tag of the image (default below: the name the Kubernetes manifests use)
#   BASE_IMAGE   the tag of the base (default localhost/snowpipe-kafka-base:<version>)
#   BINARY       use this binary instead of building one (built as in step 1)
#   CARGO        the cargo to build with (default: cargo)
#   CARGO_TARGET_DIR  where cargo builds (as cargo reads it; relative to the directory the
#                script is run from); the binary is taken from its release/ folder. What this
#                script makes stays in target/container of the repository: the build context.
# The last line on stdout is the image's name.
set -euo pipefail

# Made absolute before the script leaves the caller's directory.
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    CARGO_TARGET_DIR="$(realpath -m -- "$CARGO_TARGET_DIR")"
    export CARGO_TARGET_DIR
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' kafka/Cargo.toml | head -n 1)"
if [ -z "$VERSION" ]; then
    echo "build-image.sh: no version = \"...\" line in kafka/Cargo.toml" >&2
    exit 1
fi
IMAGE="${IMAGE:-ghcr.io/snowpipe-streaming/snowpipe-kafka:$VERSION}"
BASE_IMAGE="${BASE_IMAGE:-localhost/snowpipe-kafka-base:$VERSION}"
REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
PODMAN=(podman --runtime runc)
# On the base and the image, so that the ones earlier runs left untagged can be removed.
MADE_BY="org.snowpipe-streaming.made-by=kafka/container/build-image.sh"

# Everything this script makes lives here (ignored by git; the build context's .dockerignore
# lets target/container/snowpipe-kafka alone through).
WORK="$ROOT/target/container"
BIN="$WORK/snowpipe-kafka"

log() { echo "build-image.sh: $*" >&2; }
die() { log "$*"; exit 1; }

for tool in podman apt-get dpkg dpkg-deb ldd strip tar; do
    command -v "$tool" >/dev/null 2>&1 \
        || die "$tool not found (on Debian: kafka/container/setup-podman.sh installs podman; binutils has strip)"
done
[ "$(id -u)" -eq 0 ] || die "run it as root: podman --network host and the base's file owners need it"

mkdir -p "$WORK"

# 1. The binary.
if [ -n "${BINARY:-}" ]; then
    [ -x "$BINARY" ] || die "BINARY=$BINARY is not an executable file"
    log "using $BINARY"
    cp "$BINARY" "$BIN.tmp"
else
    log "building the release binary (features: tls)"
    "${CARGO:-cargo}" build --release --locked -p snowpipe-kafka --features tls >&2
    cp "${CARGO_TARGET_DIR:-target}/release/snowpipe-kafka" "$BIN.tmp"
fi
strip "$BIN.tmp"
chmod 0755 "$BIN.tmp"
mv "$BIN.tmp" "$BIN"

# 2. The base image from Debian packages.
# The libraries the binary needs: "name => /path (addr)" and "/lib64/ld-linux... (addr)".
mapfile -t LIBS < <(ldd "$BIN" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
[ "${#LIBS[@]}" -gt 0 ] || die "ldd found no library in $BIN (a static binary needs no base: use any)"

# The package owning a path; merged-/usr systems name /lib/... and /usr/lib/... alike.
owner() {
    local p="$1" alt
    case "$p" in
        /usr/*) alt="${p#/usr}" ;;
        *) alt="/usr$p" ;;
    esac
    for q in "$p" "$(readlink -f "$p")" "$alt"; do
        out="$(dpkg -S "$q" 2>/dev/null | grep -v '^diversion' | head -n 1 || true)"
        if [ -n "$out" ]; then
            # "libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6" (or "a, b: path": the first)
            out="${out%%: /*}"
            echo "${out%%,*}"
            return 0
        fi
    done
    return 1
}
PKGS=(ca-certificates)
for lib in "${LIBS[@]}"; do
    pkg="$(owner "$lib")" || die "no Debian package owns $lib (ldd of $BIN)"
    PKGS+=("${pkg%%:*}")
done
mapfile -t PKGS < <(printf '%s\n' "${PKGS[@]}" | sort -u)
log "libraries: ${LIBS[*]}"
log "packages: ${PKGS[*]}"

DEBS="$WORK/debs"
rm -rf "$DEBS" && mkdir -p "$DEBS"
if ! (cd "$DEBS" && apt-get -o APT::Sandbox::User=root download "${PKGS[@]}" >&2); then
    log "apt-get download failed; updating the package lists once"
    apt-get -o DPkg::Lock::Timeout=600 update >&2
    (cd "$DEBS" && apt-get -o APT::Sandbox::User=root download "${PKGS[@]}" >&2) || die "cannot download ${PKGS[*]}"
fi

UNPACKED="$WORK/unpacked"
ROOTFS="$WORK/rootfs"
rm -rf "$UNPACKED" "$ROOTFS"
mkdir -p "$UNPACKED" "$ROOTFS"
for deb in "$DEBS"/*.deb; do
    dpkg-deb -x "$deb" "$UNPACKED"
done

# A path of the unpacked packages as the running system would see it: symbolic links followed
# inside $UNPACKED (absolute ones too), and /lib ⇄ /usr/lib (merged /usr).
resolve() {
    local p="$1" t _
    for _ in $(seq 1 16); do
        if [ ! -e "$UNPACKED$p" ] && [ ! -L "$UNPACKED$p" ]; then
            case "$p" in
                /usr/*) p="${p#/usr}" ;;
                *) p="/usr$p" ;;
            esac
        fi
        if [ -L "$UNPACKED$p" ]; then
            t="$(readlink "$UNPACKED$p")"
            case "$t" in
                /*) p="$t" ;;
                *) p="$(dirname "$p")/$t" ;;
            esac
        elif [ -f "$UNPACKED$p" ]; then
            echo "$UNPACKED$p"
            return 0
        else
            return 1
        fi
    done
    return 1
}
for lib in "${LIBS[@]}"; do
    src="$(resolve "$lib")" || die "$lib is not in the packages ${PKGS[*]}"
    install -D -m 0755 "$src" "$ROOTFS$lib"
done

# The CA bundle, as update-ca-certificates makes it from the Mozilla certificates (librdkafka's
# OpenSSL finds /etc/ssl/certs/ca-certificates.crt; the Schema Registry client reads it too).
mkdir -p "$ROOTFS/etc/ssl/certs"
find "$UNPACKED/usr/share/ca-certificates" -name '*.crt' | LC_ALL=C sort | while read -r crt; do
    cat "$crt"
    # Each certificate on its own lines, even when a file lacks the final newline.
    [ -z "$(tail -c 1 "$crt")" ] || echo
done >"$ROOTFS/etc/ssl/certs/ca-certificates.crt"
grep -q 'BEGIN CERTIFICATE' "$ROOTFS/etc/ssl/certs/ca-certificates.crt" \
    || die "no CA certificate in the ca-certificates package"

# The packages' licences, each as /usr/share/doc/<package>/copyright. A package whose doc
# folder is a symbolic link into another package's (libgcc-s1's into gcc-12-base, which Debian
# policy allows for packages of one source) gets that package's file: the package is
# downloaded and unpacked too. A package without one stops the build.
copyright_of() {
    local pkg="$1" doc target
    doc="$UNPACKED/usr/share/doc/$pkg"
    if [ -L "$doc" ]; then
        target="$(basename "$(readlink "$doc")")"
        if [ ! -f "$UNPACKED/usr/share/doc/$target/copyright" ]; then
            log "$pkg's doc folder links to $target's: unpacking $target for its copyright"
            (cd "$DEBS" && apt-get -o APT::Sandbox::User=root download "$target" >&2) \
                || die "cannot download $target (the copyright of $pkg)"
            dpkg-deb -x "$(ls "$DEBS"/"${target}"_*.deb | head -n 1)" "$UNPACKED"
        fi
        doc="$UNPACKED/usr/share/doc/$target"
    fi
    [ -f "$doc/copyright" ] || die "$pkg has no /usr/share/doc/$pkg/copyright: its licence would be missing"
    echo "$doc/copyright"
}
for pkg in "${PKGS[@]}"; do
    src="$(copyright_of "$pkg")"
    install -D -m 0644 "$src" "$ROOTFS/usr/share/doc/$pkg/copyright"
done

# Users (no shell: there is none), name lookups, a home and /tmp.
cat >"$ROOTFS/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat >"$ROOTFS/etc/group" <<'GROUP'
root:x:0:
nonroot:x:65532:
GROUP
printf 'hosts: files dns\n' >"$ROOTFS/etc/nsswitch.conf"
chmod 0644 "$ROOTFS/etc/passwd" "$ROOTFS/etc/group" "$ROOTFS/etc/nsswitch.conf"
mkdir -p "$ROOTFS/root" "$ROOTFS/home/nonroot" "$ROOTFS/tmp" "$ROOTFS/usr/local/bin"
chmod 0700 "$ROOTFS/root" "$ROOTFS/home/nonroot"
chown 65532:65532 "$ROOTFS/home/nonroot"
chmod 1777 "$ROOTFS/tmp"

tar --numeric-owner -C "$ROOTFS" -cf "$WORK/base.tar" .
"${PODMAN[@]}" import --quiet \
    --message "snowpipe-kafka base from Debian packages: ${PKGS[*]}" \
    --change "LABEL $MADE_BY" \
    "$WORK/base.tar" "$BASE_IMAGE" >/dev/null
log "base $BASE_IMAGE: $(du -sh "$ROOTFS" | cut -f1) ($(find "$ROOTFS" -type f | wc -l) files)"

# 3. The image, on the base pinned by its digest as the Containerfile pins every base
# (`FROM ${RUNTIME_BASE}@${RUNTIME_DIGEST}`): the repository without the tag, and the digest.
BASE_DIGEST="$("${PODMAN[@]}" image inspect --format '{{.Digest}}' "$BASE_IMAGE")"
case "$BASE_DIGEST" in
    sha256:*) ;;
    *) die "podman gives no digest for $BASE_IMAGE" ;;
esac
BASE_REPO="$BASE_IMAGE"
if [[ "${BASE_IMAGE##*/}" == *:* ]]; then
    BASE_REPO="${BASE_IMAGE%:*}"
fi
"${PODMAN[@]}" build --pull=never --layers=false --label "$MADE_BY" \
    -f kafka/Containerfile --target runtime-prebuilt \
    --build-arg RUNTIME_BASE="$BASE_REPO" \
    --build-arg RUNTIME_DIGEST="$BASE_DIGEST" \
    --build-arg BINARY=target/container/snowpipe-kafka \
    --build-arg VERSION="$VERSION" \
    --build-arg REVISION="$REVISION" \
    -t "$IMAGE" . >&2

# It starts: the binary finds its libraries as the non-root user.
"${PODMAN[@]}" run --rm "$IMAGE" --version >&2 || die "$IMAGE does not start"
# What earlier runs of this script left untagged (images of other origins are not touched).
"${PODMAN[@]}" image prune --force --filter "label=$MADE_BY" >/dev/null || true
log "built $IMAGE ($("${PODMAN[@]}" image inspect "$IMAGE" --format '{{.Size}}') bytes)"
echo "$IMAGE"
