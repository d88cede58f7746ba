"""Decodes sonde's histogram encoding (docs/histograms.md, version 1) for the
integration tests: header fields and the slot counts."""
import struct


def decode(blob):
    """-> dict(slots=[counts], total, saturated, min, max, sum, lowest, highest, sigfigs)"""
    if blob[:4] != b"SHD1":
        raise ValueError("not a sonde histogram")
    nslots, lowest, highest, total, sat, mn, mx = struct.unpack_from("<Iqqqqqq", blob, 4)
    lo, hi = struct.unpack_from("<QQ", blob, 56)
    sigfigs = blob[72]
    slots, at, i = [0] * nslots, 73, 0

    def varint():
        nonlocal at
        v = shift = 0
        while True:
            b = blob[at]
            at += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v

    while at < len(blob):
        v = varint()
        if v:
            slots[i] = v
            i += 1
        else:
            i += varint()
    return dict(slots=slots, total=total, saturated=sat, min=mn, max=mx, sum=lo | hi << 64,
                lowest=lowest, highest=highest, sigfigs=sigfigs)


def merge(hists):
    """The merge of decoded histograms of one configuration."""
    out = dict(hists[0])
    out["slots"] = [sum(s) for s in zip(*(h["slots"] for h in hists))]
    for k in ("total", "saturated", "sum"):
        out[k] = sum(h[k] for h in hists)
    used = [h for h in hists if h["total"]]
    out["min"] = min(h["min"] for h in used) if used else 0
    out["max"] = max(h["max"] for h in used) if used else 0
    return out
