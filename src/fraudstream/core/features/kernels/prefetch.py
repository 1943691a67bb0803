"""Prefetch instructions for the compiled loops: state rows asked of memory before a loop needs them.

The state is far larger than the processor's caches, so most of an event's records come from main
memory. The loops ask for the records of the event ``_AHEAD`` places further on (and the hash table
rows of its keys) with prefetch instructions, which do not wait: the memory works while the loop
computes, rather than in a pass of its own before it.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = []

#: How many events ahead the loops prefetch state: far enough for main memory to answer (~100 ns)
#: while they compute, near enough that the lines are still in cache when the loop gets there.
#: 8, 16 and 32 measured alike; 16 is in the middle.
_AHEAD = 16
_LINE_WORDS = 8  # int64 words per 64-byte cache line


def _prefetch_line(typingctx, array, row, col):  # type: ignore[no-untyped-def]
    """Ask for the cache line holding ``array[row, col]``, to be written soon (``prefetchw``).

    A hint: it never faults, whatever the address, and the loop does not wait for it.
    """

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        index = [context.cast(builder, args[k], signature.args[k], types.intp) for k in (1, 2)]
        address = cgutils.get_item_pointer2(
            context,
            builder,
            data=view.data,
            shape=cgutils.unpack_tuple(builder, view.shape),
            strides=cgutils.unpack_tuple(builder, view.strides),
            layout=array_type.layout,
            inds=index,
            wraparound=False,
            boundscheck=False,
        )
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        # The name of typed-pointer LLVM (numba 0.60's); LLVM with opaque pointers accepts it too.
        signature_type = ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32])
        prefetch = cgutils.get_or_insert_function(builder.module, signature_type, "llvm.prefetch.p0i8")
        # Arguments: the address, 1 = for writing, 3 = keep in every cache level, 1 = data.
        builder.call(prefetch, [builder.bitcast(address, byte_pointer), i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, row, col), codegen


#: ``_prefetch(array, row, col)`` inside compiled code (numba passes the typing context itself).
_prefetch: Any = intrinsic(_prefetch_line)


@njit(cache=True, nogil=True)
def _prefetch_row(rows, row):  # type: ignore[no-untyped-def]
    """Prefetch every cache line of ``rows[row]`` (int64 rows that start on a line, as records do)."""
    for k in range(0, rows.shape[1], _LINE_WORDS):
        _prefetch(rows, row, k)


@njit(cache=True, nogil=True)
def _prefetch_ahead(slots, rows, i):  # type: ignore[no-untyped-def]
    """Prefetch the row of the event ``_AHEAD`` after ``i``, and at the first event the rows of
    every event up to there (a slot below 0 has no row)."""
    n = slots.shape[0]
    for j in range(0 if i == 0 else i + _AHEAD, min(i + _AHEAD + 1, n)):
        if slots[j] >= 0:
            _prefetch_row(rows, slots[j])
