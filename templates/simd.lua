-- simd.lua -- C statements for the vector targets (AVX2+FMA, AVX-512F,
-- NEON).
-- simd.for_target(t) returns nil for "portable": templates then emit plain
-- loops over constant-length arrays, which gcc and clang vectorize.
--
-- A target is one table of C snippets: its vector type and a pattern per
-- operation, where {p} is an address, {x} a value and {a}, {b}, {c} the
-- operands.  The emitters below turn them into whole statements, so a
-- template writes `${V.fma_stmt(acc, x, w)}` and never names an intrinsic.
local simd = {}

local targets = {
  avx2 = {width = 8, type = "__m256", registers = 16,
          load = "_mm256_loadu_ps({p})", store = "_mm256_storeu_ps({p}, {x})",
          zero = "_mm256_setzero_ps()", set1 = "_mm256_set1_ps({x})",
          fma = "_mm256_fmadd_ps({a}, {b}, {c})", -- a * b + c, fused
          max = "_mm256_max_ps({a}, {b})", min = "_mm256_min_ps({a}, {b})"},
  avx512 = {width = 16, type = "__m512", registers = 32,
            load = "_mm512_loadu_ps({p})", store = "_mm512_storeu_ps({p}, {x})",
            zero = "_mm512_setzero_ps()", set1 = "_mm512_set1_ps({x})",
            fma = "_mm512_fmadd_ps({a}, {b}, {c})",
            max = "_mm512_max_ps({a}, {b})", min = "_mm512_min_ps({a}, {b})"},
  -- AArch64 Advanced SIMD (<arm_neon.h>, no target attribute: every
  -- AArch64 CPU has it).  vfmaq_f32 takes the addend first.  vmaxq_f32
  -- returns NaN as the reference does but +0.0 for max(+0.0, -0.0), where
  -- the reference keeps -0.0: relu is a compare-select, which keeps x
  -- unless x < 0 (false for NaN and for -0.0).  The clamp to 6 may be
  -- vminq_f32: it returns NaN for NaN, and 6 is no zero whose sign it
  -- could pick (one expression keeps relu6 on one line).
  neon = {width = 4, type = "float32x4_t", registers = 32,
          load = "vld1q_f32({p})", store = "vst1q_f32({p}, {x})",
          zero = "vdupq_n_f32(0.0f)", set1 = "vdupq_n_f32({x})",
          fma = "vfmaq_f32({c}, {a}, {b})", -- c + a * b: the addend first
          relu = "vbslq_f32(vcltq_f32({x}, zero), zero, {x})",
          min = "vminq_f32({a}, {b})"},
}

-- The emitter of one target: each function returns C text, an expression
-- or (the *_stmt and let_* ones) a whole statement.
function simd.for_target(target)
  local t = targets[target]
  if not t then return nil end
  local function fill(pattern, operands)
    return (pattern:gsub("{(%a)}", operands))
  end
  local v = {width = t.width, type = t.type, registers = t.registers}
  function v.load(address) return fill(t.load, {p = address}) end
  function v.zero() return t.zero end
  function v.broadcast(scalar) return fill(t.set1, {x = scalar}) end
  function v.fma(a, b, c) return fill(t.fma, {a = a, b = b, c = c}) end -- a*b + c

  -- `TYPE acc = *address;` (or zero when address is nil): an accumulator
  function v.acc_stmt(acc, address)
    return t.type .. " " .. acc .. " = " .. (address and v.load(address) or t.zero) .. ";"
  end
  -- `const TYPE name = *address;`
  function v.let_load(name, address)
    return "const " .. t.type .. " " .. name .. " = " .. v.load(address) .. ";"
  end
  -- `const TYPE name = {scalar, scalar, ...};`
  function v.let_broadcast(name, scalar)
    return "const " .. t.type .. " " .. name .. " = " .. v.broadcast(scalar) .. ";"
  end
  -- `acc += a * b;`, fused (a may be an expression: v.load(...))
  function v.fma_stmt(acc, a, b) return acc .. " = " .. v.fma(a, b, acc) .. ";" end
  -- `*address = x;`
  function v.store_stmt(address, x) return fill(t.store, {p = address, x = x}) .. ";" end

  -- The constants an activation needs (a list of declarations, emitted
  -- once per function), and the statement applying it to `x` in place.
  -- x86: max(zero, x) and min(six, x) return their second operand when it
  -- is NaN or when both are zeros, which keeps NaN and -0.0 as the
  -- reference does; a target with a `relu` pattern (neon) uses that.
  function v.activation_constants(act)
    local list = {}
    if act == "relu" or act == "relu6" then
      list[1] = "const " .. t.type .. " zero = " .. t.zero .. ";"
    end
    if act == "relu6" then
      list[2] = "const " .. t.type .. " six = " .. v.broadcast("6.0f") .. ";"
    end
    return list
  end
  function v.activate(act, x)
    local value = t.relu and fill(t.relu, {x = x}) or fill(t.max, {a = "zero", b = x})
    if act == "relu6" then value = fill(t.min, {a = "six", b = value}) end
    return x .. " = " .. value .. ";"
  end

  -- for t, v, acc, offset in V.accumulators(pixels, vectors): the
  -- accumulators of a register block, pixel t (from 1) by vector v (from
  -- 0), named acc<t>_<v>, offset the vector's first float in the block
  function v.accumulators(pixels, vectors)
    local i = -1
    return function()
      i = i + 1
      if i >= pixels * vectors then return nil end
      local p, q = i // vectors + 1, i % vectors
      return p, q, "acc" .. p .. "_" .. q, q * t.width
    end
  end
  return v
end

return simd
