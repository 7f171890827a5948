# The psutil peer of a first readSmaps(): one fresh process that reads
# every mapping of <pid> with its counters, as psutil users do.
#
#   python3 psutil_smaps.py <pid> <at least this many mappings>
import sys

import psutil

maps = psutil.Process(int(sys.argv[1])).memory_maps(grouped=False)
if len(maps) < int(sys.argv[2]):
    sys.exit(f"only {len(maps)} mappings")
