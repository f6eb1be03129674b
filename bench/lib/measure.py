#!/usr/bin/env python3
"""Runs a command and prints "SECONDS PEAK_RSS_KIB WRITE_BYTES" for it on stderr's last line.

write_bytes (from /proc/PID/io) counts what the process sent towards the disk; it is read after the
process exits but before it is reaped (waitid with WNOWAIT), so nothing is missed.
Usage: measure.py OUTFILE -- COMMAND [ARGS...]   (the numbers go to OUTFILE; the command's status is ours)
"""
import os, sys, time

out = sys.argv[1]
command = sys.argv[sys.argv.index("--") + 1:]
start = time.monotonic()
pid = os.fork()
if pid == 0:
    os.execvp(command[0], command)
os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
elapsed = time.monotonic() - start
written = 0
try:
    with open(f"/proc/{pid}/io") as io:
        for line in io:
            if line.startswith("write_bytes:"):
                written = int(line.split()[1])
except OSError:
    pass
_, status, usage = os.wait4(pid, 0)
with open(out, "w") as f:
    f.write(f"{elapsed:.3f} {usage.ru_maxrss} {written}\n")
sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)
