"""Triton kernels of model/qk_norm_rope.py (imported only where Triton is installed)."""
import triton
import triton.language as tl


@triton.jit
def norm_rotate_store(src, weight, bias, dst, mask, c0, c1, c2, c3, s0, s1, s2, s3, eps,
                      D: tl.constexpr):
    """LayerNorm (weight, bias: (D,)) + rotation of BLOCK rows of q or k: src / dst (BLOCK,)
    pointers to the rows' first features; c*, s* the table quarters (BLOCK, D/4)."""
    Q: tl.constexpr = D // 4
    e = tl.arange(0, Q)[None, :]
    # four contiguous quarter loads instead of one load and a gather of the rotation's
    # partners (a gather, which Triton cannot vectorise)
    x0 = tl.load(src[:, None] + e, mask=mask, other=0.0).to(tl.float32)
    x1 = tl.load(src[:, None] + Q + e, mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(src[:, None] + 2 * Q + e, mask=mask, other=0.0).to(tl.float32)
    x3 = tl.load(src[:, None] + 3 * Q + e, mask=mask, other=0.0).to(tl.float32)
    mean = (tl.sum(x0, 1) + tl.sum(x1, 1) + tl.sum(x2, 1) + tl.sum(x3, 1)) / D
    x0, x1 = x0 - mean[:, None], x1 - mean[:, None]
    x2, x3 = x2 - mean[:, None], x3 - mean[:, None]
    var = (tl.sum(x0 * x0, 1) + tl.sum(x1 * x1, 1) + tl.sum(x2 * x2, 1)
           + tl.sum(x3 * x3, 1)) / D
    rstd = (1.0 / tl.sqrt(var + eps))[:, None]
    w, b = weight + e, bias + e
    n0 = x0 * rstd * tl.load(w).to(tl.float32) + tl.load(b).to(tl.float32)
    n1 = x1 * rstd * tl.load(w + Q).to(tl.float32) + tl.load(b + Q).to(tl.float32)
    n2 = x2 * rstd * tl.load(w + 2 * Q).to(tl.float32) + tl.load(b + 2 * Q).to(tl.float32)
    n3 = x3 * rstd * tl.load(w + 3 * Q).to(tl.float32) + tl.load(b + 3 * Q).to(tl.float32)
    # apply_rope: t cos + rot(t) sin, rot turning each half's quarters (a, b) to (-b, a)
    ty = dst.dtype.element_ty
    tl.store(dst[:, None] + e, (n0 * c0 - n1 * s0).to(ty), mask=mask)
    tl.store(dst[:, None] + Q + e, (n1 * c1 + n0 * s1).to(ty), mask=mask)
    tl.store(dst[:, None] + 2 * Q + e, (n2 * c2 - n3 * s2).to(ty), mask=mask)
    tl.store(dst[:, None] + 3 * Q + e, (n3 * c3 + n2 * s3).to(ty), mask=mask)


@triton.jit
def qk_norm_rope_kernel(qkv, q_weight, q_bias, k_weight, k_bias, cos, sin, out, N, heads,
                        eps_q, eps_k, D: tl.constexpr, BLOCK: tl.constexpr):
    """One program: BLOCK rows (tokens) of one batch item and head, q and k (sharing the
    table loads)."""
    Q: tl.constexpr = D // 4
    pid_n, bh = tl.program_id(0), tl.program_id(1)
    b, h = bh // heads, bh % heads
    rows = pid_n * BLOCK + tl.arange(0, BLOCK)
    mask = rows[:, None] < N
    e = tl.arange(0, Q)[None, :]
    table = rows[:, None] * D + e
    c0 = tl.load(cos + table, mask=mask, other=0.0)
    c1 = tl.load(cos + table + Q, mask=mask, other=0.0)
    c2 = tl.load(cos + table + 2 * Q, mask=mask, other=0.0)
    c3 = tl.load(cos + table + 3 * Q, mask=mask, other=0.0)
    s0 = tl.load(sin + table, mask=mask, other=0.0)
    s1 = tl.load(sin + table + Q, mask=mask, other=0.0)
    s2 = tl.load(sin + table + 2 * Q, mask=mask, other=0.0)
    s3 = tl.load(sin + table + 3 * Q, mask=mask, other=0.0)
    src = qkv + ((b * N + rows) * 3 * heads + h) * D            # qkv[b, row, 0, h]
    dst = out + (bh * N + rows) * D                               # out[0, b, h, row]
    norm_rotate_store(src, q_weight, q_bias, dst, mask, c0, c1, c2, c3, s0, s1, s2, s3, eps_q,
                      D)
    norm_rotate_store(src + heads * D, k_weight, k_bias, dst + tl.num_programs(1) * N * D,
                      mask, c0, c1, c2, c3, s0, s1, s2, s3, eps_k, D)
