#!/usr/bin/python3
"""Writes N copies of one 64-byte labeled frame (label 100 on core0's MAC: a swap in examples/fib.json) as a classic
pcap, for replay-speed runs. Usage: make_capture.py N OUT"""
import struct, sys
n, path = int(sys.argv[1]), sys.argv[2]
frame = bytes.fromhex("020000000001" "02ee00000099" "8847" "00064109") + bytes.fromhex("45000014000700004000fd00") + bytes(38)
frame = frame[:60]
with open(path, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    rec = struct.pack("<IIII", 1764000000, 0, len(frame), len(frame)) + frame
    f.write(rec * n)
