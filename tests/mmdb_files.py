"""MaxMind DB files written by the tests themselves, so the geo path needs no corpus.

``write_mmdb`` builds a real database with mmdb-writer (read back by the same
``maxminddb`` reader the collector uses); ``corrupt_data_section`` spoils one the way a
truncated or badly built download is spoiled: the tree and metadata stay readable, the
records do not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import maxminddb
from mmdb_writer import MMDBWriter
from netaddr import IPSet

# The data section follows the search tree after this many zero bytes (MaxMind DB spec).
DATA_SECTION_SEPARATOR = 16
METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"
# A pointer (type 1) with a 32-bit offset far past any test file's end.
POINTER_PAST_THE_END = b"\x38\xff\xff\xff"


def write_mmdb(path: Path, networks: dict[str, dict[str, Any]], kind: str = "Test",
               ip_version: int = 6) -> Path:
    """A database at ``path`` answering ``networks`` (CIDR → record); IPv6 ones hold IPv4 too."""
    writer = MMDBWriter(ip_version=ip_version, ipv4_compatible=ip_version == 6,
                        database_type=kind)
    for network, record in networks.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


def corrupt_data_section(path: Path) -> Path:
    """Overwrite every record of the database at ``path`` with pointers past its end."""
    with maxminddb.open_database(str(path)) as reader:
        metadata = reader.metadata()
    content = bytearray(path.read_bytes())
    # Each node holds two records of record_size bits.
    search_tree_bytes = metadata.node_count * metadata.record_size * 2 // 8
    start = search_tree_bytes + DATA_SECTION_SEPARATOR
    end = content.rindex(METADATA_MARKER)
    repeats = (end - start) // len(POINTER_PAST_THE_END) + 1
    content[start:end] = (POINTER_PAST_THE_END * repeats)[: end - start]
    path.write_bytes(bytes(content))
    return path
