#!/usr/bin/env python3
"""Fail unless a PNG screenshot shows something: decode it with the standard library only
(zlib + PNG filters) and require both enough distinct colours and enough non-background pixels.

usage: png-not-blank.py FILE.png [--min-colors N] [--min-ink FRACTION]
"""
import argparse
import struct
import sys
import zlib


def decode(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    pos, idat, hdr = 8, [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if hdr is None:
        raise ValueError(f"{path}: no IHDR chunk")
    width, height, depth, color, _, _, interlace = hdr
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace != 0:
        raise ValueError(f"{path}: unsupported PNG (depth {depth}, colour type {color}, interlace {interlace})")
    raw = zlib.decompress(b"".join(idat))
    bpp, stride = channels, width * channels
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        f = raw[i]
        line = bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("png")
    ap.add_argument("--min-colors", type=int, default=16)
    ap.add_argument("--min-ink", type=float, default=0.01)
    args = ap.parse_args()
    w, h, ch, rows = decode(args.png)
    counts = {}
    for row in rows[::2]:
        for x in range(0, w * ch, ch * 2):
            px = row[x : x + min(ch, 3)]
            counts[px] = counts.get(px, 0) + 1
    total = sum(counts.values())
    background, bg_count = max(counts.items(), key=lambda kv: kv[1])
    ink = 1 - bg_count / total
    print(f"{args.png}: {w}x{h}, {len(counts)} colours sampled, {ink:.1%} non-background pixels")
    if len(counts) < args.min_colors or ink < args.min_ink:
        print(f"{args.png}: looks blank (need >= {args.min_colors} colours and >= {args.min_ink:.0%} ink)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
