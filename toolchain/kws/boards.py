"""The board registry: what the toolchain knows about each firmware/boards/<board>/, as data.

Each entry names the part, its clock, flash and RAM budgets (the same numbers as the board's linker
script: tests/test_boards.py checks they agree) and how to program it. Code looks boards up here and
never branches on a board's name.

    flash_bytes / ram_bytes   None when the board has no fixed budget (the host board)
    pyocd_target              pyocd's target name (`pyocd list --targets`; some need a device pack)
    openocd_args              openocd's -f options: interface (probe) then target
    flash_base                where the image starts in flash (pyocd's compare after programming)
    not_flashable             why `make flash` refuses the board, or None when it can be flashed
"""

from __future__ import annotations

from dataclasses import dataclass

from kws.errors import KwsError


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    cpu: str
    clock_hz: int
    flash_bytes: int | None
    ram_bytes: int | None
    flash_base: int = 0
    pyocd_target: str | None = None
    pyocd_pack_hint: str | None = None
    openocd_args: tuple[str, ...] = ()
    probe: str = ""
    not_flashable: str | None = None

    @property
    def flashable(self) -> bool:
        return self.not_flashable is None


KIB = 1024
MIB = 1024 * KIB

BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        Board(
            name="nucleo_l4r5zi",
            part="STM32L4R5ZI",
            cpu="cortex-m4f",
            clock_hz=120_000_000,
            flash_bytes=2 * MIB,
            ram_bytes=640 * KIB,
            flash_base=0x0800_0000,
            pyocd_target="stm32l4r5zitx",
            pyocd_pack_hint="pyocd pack install stm32l4r5zitx",
            openocd_args=("-f", "interface/stlink.cfg", "-f", "target/stm32l4x.cfg"),
            probe="the on-board ST-LINK/V2-1 (USB connector CN1)",
        ),
        Board(
            name="qemu_mps2_an386",
            part="Arm MPS2+ AN386 under qemu-system-arm",
            cpu="cortex-m4f",
            clock_hz=25_000_000,
            flash_bytes=4 * MIB,
            ram_bytes=4 * MIB,
            not_flashable="it runs under QEMU (make sim BOARD=qemu_mps2_an386), there is nothing to flash",
        ),
        Board(
            name="template",
            part="a typical Cortex-M4F (porting template)",
            cpu="cortex-m4f",
            clock_hz=1,
            flash_bytes=512 * KIB,
            ram_bytes=128 * KIB,
            not_flashable="it is the porting template: copy it to a board of your own first",
        ),
        Board(
            name="host",
            part="this computer (an x86 program)",
            cpu="host",
            clock_hz=1,
            flash_bytes=None,
            ram_bytes=None,
            not_flashable="it builds a program for this computer: run it instead",
        ),
    )
}


def get(name: str) -> Board:
    """The registry entry for board `name`; KwsError naming the known boards when there is none."""
    try:
        return BOARDS[name]
    except KeyError:
        raise KwsError(f"unknown board {name!r}; known boards: {', '.join(sorted(BOARDS))}") from None


def flashable() -> list[str]:
    return sorted(n for n, b in BOARDS.items() if b.flashable)
