#!/bin/sh
# Fetches the pinned third-party browser code from npm, checks it, and copies the built files
# the pages need into the tree: PDF.js into assets/vendor/pdfjs/ (served by the example),
# axe-core into tests/vendor/ (injected by the browser test only). The results are committed,
# so a build needs neither npm nor the network; run this only to change a version, then update
# the version and its SHA-256 below together.
set -eu

PDFJS_VERSION=5.4.624
PDFJS_SHA256=5c387457cd03cc2e7b9c9b1ed642e8148d1ba44c3b8e5b5b771526feb24b61b9
AXE_VERSION=4.11.0
AXE_SHA256=39bed7d72308f6d620789c169d699bfd7e8da80f65b545821a6b2215c3e83107

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# npm pack downloads a package's tarball from the registry without installing or running it.
fetch() { # name version sha256
    (cd "$work" && npm pack --silent "$1@$2" >/dev/null)
    tarball="$work/$1-$2.tgz"
    echo "$3  $tarball" | sha256sum --check --quiet || {
        echo "vendor.sh: $1@$2 does not have the pinned SHA-256: refusing it" >&2
        exit 1
    }
    mkdir -p "$work/$1"
    tar -xzf "$tarball" -C "$work/$1"
}

fetch pdfjs-dist "$PDFJS_VERSION" "$PDFJS_SHA256"
pdfjs="$here/assets/vendor/pdfjs"
rm -rf "$pdfjs"
mkdir -p "$pdfjs"
package="$work/pdfjs-dist/package"
cp "$package/build/pdf.min.mjs" "$package/build/pdf.worker.min.mjs" "$package/LICENSE" "$pdfjs/"
cp -R "$package/cmaps" "$package/standard_fonts" "$pdfjs/"
echo "$PDFJS_VERSION" > "$pdfjs/VERSION"

fetch axe-core "$AXE_VERSION" "$AXE_SHA256"
axe="$here/tests/vendor"
mkdir -p "$axe"
cp "$work/axe-core/package/axe.min.js" "$axe/axe.min.js"
cp "$work/axe-core/package/LICENSE" "$axe/axe-core.LICENSE"
echo "$AXE_VERSION" > "$axe/axe-core.VERSION"

echo "vendored pdfjs-dist $PDFJS_VERSION and axe-core $AXE_VERSION"
