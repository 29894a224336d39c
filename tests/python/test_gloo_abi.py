"""The compiled Gloo backend file (src/dist/gloo_backend.cpp) must not depend on gloo's ABI: it is compiled against
Debian's gloo headers but runs with the gloo bundled inside libtorch_cpu.so, a different version. It is safe only
while that object defines and references no gloo symbol of its own (every gloo object is made and used by torch's
out-of-line code). This reads the object's symbol table with nm and fails on any gloo function, vtable or
template instantiation that is more than a smart pointer to an opaque gloo::transport::Device."""
import os
import pathlib
import re
import shutil
import subprocess

import pytest


def test_gloo_backend_object_has_no_gloo_symbols():
    build = pathlib.Path(os.environ.get("ABMLL_BUILD_DIR", "build"))
    objects = list(build.glob("**/src/dist/gloo_backend.cpp.o"))
    assert objects, f"gloo_backend.cpp.o not found under {build}"
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) is not installed")
    symbols = subprocess.run([nm, "-C", str(objects[0])], capture_output=True, text=True, check=True).stdout
    # Layout-independent uses: shared_ptr / vector of shared_ptr to the opaque device handle.
    allowed = re.compile(r"std::shared_ptr<gloo::transport::Device>")
    offending = []
    for line in symbols.splitlines():
        name = line[19:] if len(line) > 19 else line
        if "gloo::" in allowed.sub("", name):
            offending.append(line)
    print(f"{len(symbols.splitlines())} symbols; torch's ProcessGroupGloo entry points referenced:")
    for line in symbols.splitlines():
        if " U c10d::ProcessGroupGloo" in line:
            print("  ", line.split(" U ")[1][:100])
    assert not offending, "gloo_backend.cpp.o uses gloo directly (ABI of Debian's gloo != torch's):\n" + "\n".join(
        offending)
    assert any(" U c10d::ProcessGroupGloo::ProcessGroupGloo(" in line for line in symbols.splitlines())
