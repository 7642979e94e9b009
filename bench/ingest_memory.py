"""Peak memory of one ingest of ../shared/data/docs plus the bad files of the acceptance test (bombs, tag soup,
deep JSON, a 60 MB sparse file…). Prints a table and writes JSON; asserts nothing (targets are for people).

    .venv/bin/python bench/ingest_memory.py [--out bench/ingest_memory.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.test_ingest_samples import DOCS, _bad_files  # noqa: E402  (the same bad files as the test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="also write the numbers as JSON here")
    args = parser.parse_args()
    import rag

    with tempfile.TemporaryDirectory() as tmp:
        _bad_files(Path(tmp) / "bad")
        index = rag.open_index(data_dir=Path(tmp) / "data", collection="bench")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        report = index.ingest([DOCS, Path(tmp) / "bad"])
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    numbers = {
        "documents_added": report.added,
        "failed": len(report.failed),
        "chunks": report.chunks_added,
        "seconds": round(seconds, 1),
        "peak_rss_mb_before_ingest": round(before),
        "peak_rss_mb": round(peak),
    }
    for key, value in numbers.items():
        print(f"{key:28} {value}")
    if args.out:
        args.out.write_text(json.dumps(numbers, indent=2) + "\n")


if __name__ == "__main__":
    main()
