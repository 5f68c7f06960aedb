"""ganlab/weights/manifest.json lists every shipped file with its true checksum."""

import json

from ganlab.weights import HERE, INDEX, index, sha256_of, verify_sha256


def test_index_is_up_to_date_and_checksums_match():
    on_disk = json.loads(INDEX.read_text())
    assert on_disk == index(), (
        "run: python -c 'from ganlab.weights import write_index; write_index()'"
    )
    assert set(on_disk) == {p.stem for p in HERE.glob("*.safetensors")}
    for name, entry in on_disk.items():
        assert entry["sha256"] == sha256_of(HERE / entry["file"]) == verify_sha256(name)
        assert {"command", "steps", "device", "metrics"} <= set(entry["manifest"])
