"""Build and run the C export: a host shared library, and Cortex-M0+ firmware under QEMU.

* :func:`build_host_library` compiles the C file with the host ``gcc`` into a shared library
  that :class:`HostPolicy` calls through ``ctypes`` (the parity check of ``fugu export
  --format c``; the same C builds for any target with a C99 compiler, ESP32 included).
* :func:`build_firmware` cross-compiles it with ``arm-none-eabi-gcc -mcpu=cortex-m0plus`` (the
  RP2040's core) for QEMU's ``microbit`` machine (a Cortex-M0 nRF51: the same ARMv6-M
  instruction set), with a test harness that runs the policy on embedded observations and
  writes every output through semihosting; :func:`run_firmware` runs it in
  ``qemu-system-arm`` and parses what it printed.
* :func:`firmware_size` links the policy alone (no harness, no semihosting) and reports the
  flash (code + constants) and static RAM it takes.

The toolchains are Debian packages (``gcc``, ``gcc-arm-none-eabi``, ``libnewlib-arm-none-eabi``,
``qemu-system-arm``) that ``make install`` sets up; :func:`missing_tools` names those absent.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fugu.core.errors import APIUsageError, MissingDependencyError
from fugu.export.ccode import c_float

__all__ = [
    "FirmwareRun",
    "HostPolicy",
    "build_firmware",
    "build_host_library",
    "firmware_size",
    "instructions_per_inference",
    "missing_tools",
    "run_firmware",
]

ARM_FLAGS = ["-mcpu=cortex-m0plus", "-mthumb", "-Os", "-ffunction-sections", "-fdata-sections"]
"""Cortex-M0+ code generation (soft float, as on the RP2040)."""

_LINKER_SCRIPT = """
MEMORY { FLASH (rx) : ORIGIN = 0x00000000, LENGTH = 256K
         RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 16K }
_estack = ORIGIN(RAM) + LENGTH(RAM);
SECTIONS {
  .text : { KEEP(*(.vectors)) *(.text*) *(.rodata*) . = ALIGN(4); } > FLASH
  .ARM.exidx : { *(.ARM.exidx*) } > FLASH
  _sidata = LOADADDR(.data);
  .data : { _sdata = .; *(.data*) . = ALIGN(4); _edata = .; } > RAM AT > FLASH
  .bss (NOLOAD) : { _sbss = .; *(.bss*) *(COMMON) . = ALIGN(4); _ebss = .; } > RAM
  end = .; _end = .; __end__ = .;
}
"""

_STARTUP = """
extern unsigned int _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);
extern void exit(int);
extern void initialise_monitor_handles(void) __attribute__((weak));
void reset_handler(void) {
    unsigned int *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
    if (initialise_monitor_handles) initialise_monitor_handles();
    exit(main());
}
void fault_handler(void) { for (;;) {} }
__attribute__((section(".vectors"), used)) void *const vectors[16] = {
    &_estack, reset_handler, fault_handler, fault_handler,
};
"""

_SIZE_PROBE = """
extern int policy_act(const float *obs, const unsigned char *mask, float *actions);
volatile float probe_obs[{obs}];
volatile float probe_out[{act}];
int main(void) {{
    float obs[{obs}], out[{act}];
    for (int i = 0; i < {obs}; ++i) obs[i] = probe_obs[i];
    policy_act(obs, 0, out);
    for (int i = 0; i < {act}; ++i) probe_out[i] = out[i];
    return 0;
}}
void exit(int code) {{ (void)code; for (;;) {{}} }}
"""

_HARNESS = """
#include <unistd.h>
extern int policy_act(const float *obs, const unsigned char *mask, float *actions);
extern void policy_params(const float *obs, float *params);
static const float OBS[{rows} * {obs}] = {values};
static const char HEX[] = "0123456789abcdef";
static void put(float value, char *at) {{
    union {{ float f; unsigned int u; }} bits = {{ value }};
    for (int i = 7; i >= 0; --i) {{ at[i] = HEX[bits.u & 15u]; bits.u >>= 4; }}
}}
int main(void) {{
    static char line[9 * ({params} + {act}) + 1];
    float params[{params}], actions[{act}];
    for (int r = 0; r < {rows}; ++r) {{
        policy_params(OBS + r * {obs}, params);
        policy_act(OBS + r * {obs}, 0, actions);
        int n = 0;
        for (int i = 0; i < {params}; ++i) {{ put(params[i], line + n); n += 8; line[n++] = ' '; }}
        for (int i = 0; i < {act}; ++i) {{ put(actions[i], line + n); n += 8; line[n++] = ' '; }}
        line[n - 1] = '\\n';
        write(1, line, n);
    }}
    return 0;
}}
"""

_QEMU = [
    "qemu-system-arm",
    "-M",
    "microbit",
    "-nographic",
    "-monitor",
    "none",
    "-serial",
    "none",
    "-semihosting-config",
    "enable=on,target=native",
]
"""QEMU's Cortex-M0 board, with semihosting for the firmware's output and exit."""

_TOOLS = {
    "gcc": "gcc",
    "arm-none-eabi-gcc": "gcc-arm-none-eabi",
    "arm-none-eabi-size": "binutils-arm-none-eabi",
    "qemu-system-arm": "qemu-system-arm",
}


def missing_tools(*names: str) -> list[str]:
    """The Debian packages providing the tools among ``names`` that are not on ``PATH``."""
    return [_TOOLS.get(n, n) for n in names if shutil.which(n) is None]


def _require(*names: str) -> None:
    missing = missing_tools(*names)
    if missing:
        raise MissingDependencyError(
            f"the C export's toolchain is missing: install the Debian packages "
            f"{' '.join(missing)} (make install does, as root)"
        )


def _compile(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise APIUsageError(f"{command[0]} failed:\n{result.stderr.strip()[-2000:]}")


def build_host_library(source: str, directory: str | Path) -> Path:
    """Compile ``source`` with the host ``gcc`` into ``directory/libpolicy.so``."""
    _require("gcc")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    c_file = directory / "policy.c"
    c_file.write_text(source, "utf-8")
    library = directory / "libpolicy.so"
    _compile(["gcc", "-std=c99", "-O2", "-shared", "-fPIC", str(c_file), "-o", str(library), "-lm"])
    return library


class HostPolicy:
    """The compiled C policy, called through ``ctypes`` one observation at a time."""

    def __init__(self, library: str | Path, obs_size: int, num_params: int, action_size: int):
        self._lib = ctypes.CDLL(str(library))
        self.obs_size, self.num_params, self.action_size = obs_size, num_params, action_size
        floats = ctypes.POINTER(ctypes.c_float)
        self._lib.policy_params.argtypes = [floats, floats]
        self._lib.policy_act.argtypes = [floats, ctypes.POINTER(ctypes.c_ubyte), floats]

    def __call__(
        self, obs: np.ndarray, action_mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(actions [B, action_size], params [B, num_params])`` of observations ``[B, ...]``."""
        flat = np.ascontiguousarray(np.asarray(obs, np.float32).reshape(len(obs), -1))
        params = np.zeros((len(flat), self.num_params), np.float32)
        actions = np.zeros((len(flat), self.action_size), np.float32)
        masks = None
        if action_mask is not None:
            masks = np.ascontiguousarray(np.asarray(action_mask, np.uint8).reshape(len(flat), -1))
        floats, ubytes = ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_ubyte)
        for i, row in enumerate(flat):
            self._lib.policy_params(row.ctypes.data_as(floats), params[i].ctypes.data_as(floats))
            mask = None if masks is None else masks[i].ctypes.data_as(ubytes)
            self._lib.policy_act(
                row.ctypes.data_as(floats), mask, actions[i].ctypes.data_as(floats)
            )
        return actions, params


def _arm_link(directory: Path, sources: list[Path], output: Path, extra: list[str]) -> Path:
    _require("arm-none-eabi-gcc")
    script = directory / "link.ld"
    script.write_text(_LINKER_SCRIPT, "utf-8")
    startup = directory / "startup.c"
    startup.write_text(_STARTUP, "utf-8")
    _compile(
        [
            "arm-none-eabi-gcc",
            *ARM_FLAGS,
            "-std=c99",
            "-nostartfiles",
            "-T",
            str(script),
            str(startup),
            *map(str, sources),
            "-Wl,--gc-sections",
            *extra,
            "-lm",
            "-o",
            str(output),
        ]
    )
    return output


@dataclass
class FirmwareRun:
    """What the firmware printed: the head's outputs and the actions, one row per input."""

    params: np.ndarray
    actions: np.ndarray


def build_firmware(
    source: str,
    directory: str | Path,
    observations: np.ndarray,
    num_params: int,
    action_size: int,
) -> Path:
    """Cross-compile the policy and a harness over ``observations`` into ``policy.elf``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    flat = np.asarray(observations, np.float32).reshape(len(observations), -1)
    values = "{" + ", ".join(c_float(v) for v in flat.reshape(-1)) + "}"
    policy = directory / "policy.c"
    policy.write_text(source, "utf-8")
    harness = directory / "harness.c"
    harness.write_text(
        _HARNESS.format(
            rows=len(flat), obs=flat.shape[1], values=values, params=num_params, act=action_size
        ),
        "utf-8",
    )
    return _arm_link(
        directory,
        [policy, harness],
        directory / "policy.elf",
        ["--specs=nano.specs", "--specs=rdimon.specs"],
    )


def run_firmware(
    elf: str | Path, num_params: int, action_size: int, timeout_s: float = 120.0
) -> FirmwareRun:
    """Run ``elf`` on QEMU's ``microbit`` machine with semihosting and parse its output."""
    _require("qemu-system-arm")
    command = [*_QEMU, "-kernel", str(elf)]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise APIUsageError(f"the firmware did not finish within {timeout_s:.0f} s") from error
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()]
    width = num_params + action_size
    if result.returncode != 0 or not rows or any(len(r) != width for r in rows):
        raise APIUsageError(
            f"qemu-system-arm exited with {result.returncode}; output:\n"
            f"{(result.stdout + result.stderr)[-1000:]}"
        )
    bits = np.array([[int(v, 16) for v in row] for row in rows], np.uint32)
    values = bits.view(np.float32)
    return FirmwareRun(values[:, :num_params].copy(), values[:, num_params:].copy())


_TIMING = """
#include <unistd.h>
extern int policy_act(const float *obs, const unsigned char *mask, float *actions);
#define SYST_CSR (*(volatile unsigned int *)0xE000E010)
#define SYST_RVR (*(volatile unsigned int *)0xE000E014)
#define SYST_CVR (*(volatile unsigned int *)0xE000E018)
static unsigned int now(void) {{ return SYST_CVR; }}
static void put(unsigned int v) {{
    char text[12]; int n = 11; text[n] = '\\n';
    do {{ text[--n] = (char)('0' + v % 10u); v /= 10u; }} while (v);
    write(1, text + n, 12 - n);
}}
int main(void) {{
    float obs[{obs}], out[{act}];
    for (int i = 0; i < {obs}; ++i) obs[i] = 0.1f * (float)(i % 7) - 0.3f;
    SYST_RVR = 0xFFFFFFu; SYST_CVR = 0u; SYST_CSR = 5u;
    unsigned int n = {calibration}u, t0 = now();
    __asm__ volatile("1: sub %0, #1\\n bne 1b" : "+l"(n));
    unsigned int t1 = now();
    for (int k = 0; k < {repeats}; ++k) {{ obs[0] += 0.01f; policy_act(obs, 0, out); }}
    unsigned int t2 = now();
    put((t0 - t1) & 0xFFFFFFu);
    put((t1 - t2) & 0xFFFFFFu);
    return 0;
}}
"""


def instructions_per_inference(
    source: str, directory: str | Path, obs_size: int, action_size: int, repeats: int = 20
) -> float:
    """Instructions one ``policy_act`` call executes on Cortex-M0+, counted under QEMU.

    QEMU runs with ``-icount shift=0`` (one instruction per nanosecond of virtual time); the
    SysTick timer measures the policy against a calibration loop of a known instruction count
    (``sub``/``bne``: two per iteration), so the figure does not depend on QEMU's clock
    model. Real cycles are this or more (loads, taken branches and multiplies can take two).
    """
    _require("arm-none-eabi-gcc", "qemu-system-arm")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    calibration = 200_000
    (directory / "policy.c").write_text(source, "utf-8")
    timing = directory / "timing.c"
    timing.write_text(
        _TIMING.format(obs=obs_size, act=action_size, calibration=calibration, repeats=repeats),
        "utf-8",
    )
    elf = _arm_link(
        directory,
        [directory / "policy.c", timing],
        directory / "timing.elf",
        ["--specs=nano.specs", "--specs=rdimon.specs"],
    )
    result = subprocess.run(
        [*_QEMU, "-icount", "shift=0", "-kernel", str(elf)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    ticks = [int(v) for v in result.stdout.split()]
    if result.returncode != 0 or len(ticks) != 2 or ticks[0] <= 0:
        raise APIUsageError(f"the timing firmware failed: {result.stdout}{result.stderr}")
    return ticks[1] / ticks[0] * (2 * calibration) / repeats


def firmware_size(
    source: str, directory: str | Path, obs_size: int, action_size: int
) -> dict[str, int]:
    """``{"flash": bytes, "ram": bytes}`` of the policy linked alone for Cortex-M0+ (code,
    constants and the soft-float/libm routines it calls; static buffers, stack excluded)."""
    _require("arm-none-eabi-gcc", "arm-none-eabi-size")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    policy = directory / "policy.c"
    policy.write_text(source, "utf-8")
    probe = directory / "probe.c"
    probe.write_text(_SIZE_PROBE.format(obs=obs_size, act=action_size), "utf-8")
    elf = _arm_link(directory, [policy, probe], directory / "size.elf", ["--specs=nano.specs"])
    result = subprocess.run(
        ["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True
    )
    sections = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    flash = sum(sections.get(s, 0) for s in (".text", ".ARM.exidx", ".data"))
    ram = sum(sections.get(s, 0) for s in (".data", ".bss"))
    return {"flash": flash, "ram": ram}
