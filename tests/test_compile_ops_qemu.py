"""The op property tests of test_compile_ops.py, as Cortex-M4 firmware under QEMU (qemu mps2-an386,
the target's own kernels, packed weights and scratch): a subset, since every model builds an image
(~3 s). Bit-identical with tflite-micro, output and every intermediate tensor."""

from __future__ import annotations

import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from test_compile_ops import (MIXED_CASES, _span, chain_specs, conv_specs,  # noqa: F401
                              depthwise_specs, fc_specs, props, run_and_compare)

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                       reason="qemu-system-arm / arm-none-eabi-gcc not installed (`make setup` installs them)"),
]


@st.composite
def depthwise3x3_specs(draw) -> dict:
    """The shapes the Cortex-M4 depthwise kernel specialises (3x3, stride 1, multiplier 1), and others."""
    spec = draw(depthwise_specs())
    if draw(st.integers(0, 3)) > 0:
        pad = spec["padding"]
        spec.update(kh=3, kw=3, stride=1, dilation=1, mult=1, h=_span(draw, 3, 1, pad, 1, 9),
                    w=_span(draw, 3, 1, pad, 1, 9))
    return spec


@props(4)
@given(spec=conv_specs())
def test_conv2d_qemu(spec):
    run_and_compare("conv2d", spec, ops=("CONV_2D",), engines=("qemu",))


@props(5)
@given(spec=depthwise3x3_specs())
def test_depthwise_conv2d_qemu(spec):
    run_and_compare("depthwise_conv2d", spec, ops=("DEPTHWISE_CONV_2D",), engines=("qemu",))


@props(2)
@given(spec=fc_specs())
def test_fully_connected_qemu(spec):
    run_and_compare("fully_connected", spec, ops=("FULLY_CONNECTED",), engines=("qemu",))


@props(1)
@given(spec=chain_specs())
def test_chain_qemu(spec):
    run_and_compare("chain", spec, ops=("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX"),
                    engines=("qemu",))


@pytest.mark.parametrize("kind, spec, ops", MIXED_CASES[::2])
def test_ops_qemu(kind, spec, ops):
    run_and_compare(kind, spec, ops=ops, engines=("qemu",), min_values=2)
