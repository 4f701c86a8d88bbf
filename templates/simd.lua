-- simd.lua -- C expressions for the vector targets (AVX2+FMA, AVX-512F).
-- simd.for_target(t) returns nil for "portable": templates then emit plain
-- loops over constant-length arrays, which gcc and clang vectorize.
local simd = {}

local targets = {
  avx2 = {width = 8, type = "__m256", prefix = "_mm256"},
  avx512 = {width = 16, type = "__m512", prefix = "_mm512"},
}

-- The emitter of one target: each function returns C text.
function simd.for_target(target)
  local t = targets[target]
  if not t then return nil end
  local p = t.prefix
  local v = {width = t.width, type = t.type}
  function v.load(address) return p .. "_loadu_ps(" .. address .. ")" end
  function v.store(address, value)
    return p .. "_storeu_ps(" .. address .. ", " .. value .. ");"
  end
  function v.zero() return p .. "_setzero_ps()" end
  function v.broadcast(scalar) return p .. "_set1_ps(" .. scalar .. ")" end
  -- a*b + c, fused
  function v.fma(a, b, c) return p .. "_fmadd_ps(" .. a .. ", " .. b .. ", " .. c .. ")" end
  -- The statement applying an activation to vector variable `x` in place.
  -- max(0, x) and min(6, x) return their second operand when it is NaN or
  -- when both are zeros, which keeps NaN and -0.0 as the reference does.
  function v.activate(act, x)
    if act == "relu" then
      return string.format("%s = %s_max_ps(%s_setzero_ps(), %s);", x, p, p, x)
    elseif act == "relu6" then
      return string.format("%s = %s_min_ps(%s_set1_ps(6.0f), %s_max_ps(%s_setzero_ps(), %s));",
                           x, p, p, p, p, x)
    end
    return nil
  end
  return v
end

return simd
