#!/usr/bin/env python3
"""Flash and RAM of the firmware image, from the ELF's section and symbol headers (no tools).

    python3 size.py [ELF]   (default: the release build, under $CARGO_TARGET_DIR if set)

Flash: every allocated section with contents (code, read-only data, and the initial values
of .data/.rwtext, which the bootloader copies to RAM); the `*_dummy` sections only reserve
addresses. RAM: IRAM code (.trap, .rwtext*) plus .data* and .bss* (the heap and the socket
buffers are in .bss); the stack gets what is left. `mqsim core` sums the code and data symbols
of the `mqsim` crate (legacy-mangled `_ZN5mqsim` or `<mqsim::.. as ..>`): with LTO the core's
small functions are inlined into the firmware's, so this is a lower bound.
"""
import os
import struct
import sys

SHF_ALLOC, SHT_NOBITS = 0x2, 8
IRAM = (0x4037C000, 0x403E0000)
DRAM = (0x3FC80000, 0x3FCE0000)


def sections(elf):
    shoff, = struct.unpack_from("<I", elf, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x2E)
    heads = [struct.unpack_from("<IIIIIIIIII", elf, shoff + i * shentsize) for i in range(shnum)]
    strtab = heads[shstrndx]
    def name(off):
        s = elf[strtab[4] + off:]
        return s[:s.index(0)].decode()
    return [(name(h[0]), h) for h in heads]


def main():
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    path = sys.argv[1] if len(sys.argv) > 1 else \
        os.path.join(target, "riscv32imc-unknown-none-elf/release/mqsim-firmware")
    elf = open(path, "rb").read()
    secs = sections(elf)
    flash = ram = 0
    for name, (_, typ, flags, addr, off, size, link, *_rest) in secs:
        if not flags & SHF_ALLOC or size == 0 or name.endswith("_dummy") or addr == 0:
            continue
        in_ram = IRAM[0] <= addr < IRAM[1] or DRAM[0] <= addr < DRAM[1]
        if name == ".stack":
            continue
        if typ != SHT_NOBITS:
            flash += size
        if in_ram:
            ram += size
    core = 0
    for name, (_, typ, flags, addr, off, size, link, _i, _a, entsize) in secs:
        if name != ".symtab":
            continue
        strs = secs[link][1]
        for i in range(size // entsize):
            st_name, _v, st_size, info, _o, shndx = struct.unpack_from("<IIIBBH", elf, off + i * entsize)
            s = elf[strs[4] + st_name:]
            sym = s[:s.index(0)]
            if info & 0xF in (1, 2) and (sym.startswith(b"_ZN5mqsim") or b"$LT$mqsim.." in sym):
                core += st_size
    print(f"{path}")
    print(f"flash (image): {flash:>8} bytes ({flash / 1024:.1f} KiB)")
    print(f"RAM (static):  {ram:>8} bytes ({ram / 1024:.1f} KiB), heap and socket buffers included")
    print(f"mqsim core:    {core:>8} bytes ({core / 1024:.1f} KiB) of code and data symbols")


main()
