-- common.lua -- helpers shared by the kernel templates: literals, index
-- expressions over tensors of either layout, border segments, activations,
-- and the kernel's plan (its constants, packing and scratch).
local common = {}

-- A C float literal that reads back as exactly the float `x`.
function common.f(x)
  assert(x == x and x ~= math.huge and x ~= -math.huge,
         "f(): NaN and infinity have no C literal")
  local text = string.format("%.9g", x)
  if not text:find("[%.e]") then text = text .. ".0" end
  return text .. "f"
end

-- "a + b" with constant folding, so generated indices stay readable.
function common.add(a, b)
  if type(a) == "number" and type(b) == "number" then return a + b end
  if a == 0 then return b end
  if b == 0 then return a end
  if type(b) == "number" and b < 0 then return a .. " - " .. -b end
  return a .. " + " .. b
end

-- "a * k" with constant folding (k a number).
function common.mul(a, k)
  if type(a) == "number" then return a * k end
  if k == 0 then return 0 end
  if k == 1 then return a end
  return a .. " * " .. k
end

-- x * scale + shift, folded: x is a number, a name "v", or "v + k" / "v - k"
-- (as pixel groups write their members), so "(ox + 1) * 2 - 1" becomes
-- "ox * 2 + 1".
function common.affine(x, scale, shift)
  if type(x) == "number" then return x * scale + shift end
  local name, sign, k = x:match("^([%a_][%w_]*) ([%+%-]) (%d+)$")
  if not name then name, sign, k = x:match("^([%a_][%w_]*)$"), "+", "0" end
  if not name then return common.add(common.mul(common.paren(x), scale), shift) end
  local offset = math.tointeger(k) * (sign == "-" and -1 or 1)
  return common.add(common.mul(name, scale), offset * scale + shift)
end

-- "(a)" when a is a compound expression, for use inside a product.
function common.paren(a)
  if type(a) == "number" or a:match("^[%w_]+$") then return a end
  return "(" .. a .. ")"
end

-- Element strides of a [batch][h][w][c] tensor stored in `layout`.
function common.tensor(layout, h, w, c)
  if layout == "nhwc" then
    return {n = h * w * c, y = w * c, x = c, c = 1, h = h, w = w, channels = c}
  end
  return {n = c * h * w, y = w, x = 1, c = h * w, h = h, w = w, channels = c}
end

-- A row-tile buffer [rows][w][c] whose row 0 is output row `origin`.
function common.tile(w, c)
  return {y = w * c, x = c, c = 1, w = w, channels = c, tile = true}
end

-- The offset of row (n, y) in a tensor; for a tile, of flat row r - origin.
function common.row_offset(t, n, y, r)
  if t.tile then return common.mul("(" .. r .. " - origin)", t.y) end
  return common.add(common.mul(n, t.n), common.mul(common.paren(y), t.y))
end

-- Groups output positions 0..out-1 along one axis by the range of kernel
-- taps that land inside the input: {first, last, lo, hi} segments, where
-- tap k reads input o*stride - pad + k*dilation.  `split_all` makes one
-- segment per position (full unrolling).
function common.segments(axis, split_all)
  local list = {}
  for o = 0, axis.out - 1 do
    local lo, hi = nil, nil
    for k = 0, axis.kernel - 1 do
      local i = o * axis.stride - axis.pad + k * axis.dilation
      if i >= 0 and i < axis.input then
        lo = lo or k
        hi = k
      end
    end
    lo, hi = lo or 0, hi or -1 -- hi < lo: no tap lands inside
    local last = list[#list]
    if not split_all and last and last.lo == lo and last.hi == hi then
      last.last = o
    else
      list[#list + 1] = {first = o, last = o, lo = lo, hi = hi}
    end
  end
  return list
end

-- Whether a spatial stage loops over its taps in C instead of unrolling
-- them.  Unrolled, every tap of every border row x column segment is its
-- own statement, and gcc -O3 took minutes on a 7x7 kernel (issue #10): a
-- stage unrolls at most `most` taps per pixel, and 5 segments a side (both
-- hold for any D_K <= 3 when `most` is 9).
function common.loops_taps(rows, cols, most)
  local function widest(list)
    local wide = 0
    for _, s in ipairs(list) do wide = math.max(wide, s.hi - s.lo + 1) end
    return wide
  end
  return widest(rows) * widest(cols) > most or #rows > 5 or #cols > 5
end

-- With taps looped: the segments before and after the longest one become
-- one segment each whose tap range is found at run time (`clamped`, lo and
-- hi the names `var_lo`, `var_hi` that common.tap_bounds declares), so the
-- code no longer grows with the kernel's size.
function common.merge_borders(list, var)
  if #list <= 3 then return list end
  local best = 1
  for i, s in ipairs(list) do
    if s.last - s.first > list[best].last - list[best].first then best = i end
  end
  local merged = {}
  local function merge(a, b)
    if a > b then return end
    if a == b then merged[#merged + 1] = list[a] return end
    merged[#merged + 1] = {first = list[a].first, last = list[b].last,
                           lo = var .. "_lo", hi = var .. "_hi", clamped = true}
  end
  merge(1, best - 1)
  merged[#merged + 1] = list[best]
  merge(best + 1, #list)
  return merged
end

-- C declarations of `var`_lo and `var`_hi, the taps of position `pos` (an
-- expression) that land inside the input along `axis` (hi < lo: none): a
-- list of three statements.
function common.tap_bounds(axis, pos, var)
  local base, d, last, k = var .. "_base", axis.dilation, axis.input - 1, axis.kernel - 1
  local inside = "(" .. last .. " - " .. base .. ")" .. (d > 1 and " / " .. d or "")
  local first = d > 1 and "(" .. (d - 1) .. " - " .. base .. ") / " .. d or "-" .. base
  return {
    string.format("const long %s = %s; /* input index of tap 0 */", base,
                  common.affine(pos, axis.stride, -axis.pad)),
    string.format("const long %s_lo = %s >= 0 ? 0 : %s;", var, base, first),
    string.format("const long %s_hi = %s > %d ? -1 : %s < %d ? %s : %d;", var, base,
                  last, inside, k, inside, k)}
end

-- The C statement applying an activation to float variable `v` in place.
-- NaN passes through both (as in the reference): only x < 0 and x > 6 clamp.
function common.activate(act, v)
  if act == "relu" then
    return string.format("%s = %s < 0.0f ? 0.0f : %s;", v, v, v)
  elseif act == "relu6" then
    return string.format("%s = %s < 0.0f ? 0.0f : (%s > 6.0f ? 6.0f : %s);",
                         v, v, v, v)
  end
  return nil
end

-- The activation as the micro-kernels number it (target native).
function common.act_code(act)
  return ({none = 0, relu = 1, relu6 = 2})[act]
end

-- Splits `count` channels into blocks of `block`: the full blocks end at
-- `full_end`, then one remainder block of `rest` channels (maybe 0).
function common.blocks(count, block)
  local rest = count % block
  return {block = block, full_end = count - rest, rest = rest}
end

-- The vector width in floats of a SIMD target, or nil for portable code.
function common.vector_width(target)
  if target == "avx2" then return 8 elseif target == "avx512" then return 16 end
  return nil
end

-- The pointwise stage's packed weights: [ceil(n/ob)][m][ob], zero-padded.
function common.packed_pointwise_elements(m, n, oc_block)
  return ((n + oc_block - 1) // oc_block) * m * oc_block
end

-- Checks that an index stays below 2^63 (LP64 `long`); the layer's tensor
-- sizes are already checked, this guards the generator's own arithmetic.
function common.check_index(value, what)
  assert(math.type(value) == "integer", what .. " is not an integer")
  return value
end

-- The kernel's plan: one table per stage (geometry, tensors, knobs) and
-- what the caller must provide (scratch bytes, packed weight elements).
function common.plan(layer, schedule, target)
  local plan = {rows = layer.batch * layer.out_h, scratch_bytes = 0,
                packed_elements = 0}
  -- SIMD code carries its target on every function, so the file builds
  -- with plain `cc -O2` (no -m flags) and runs where the CPU has them.
  local features = {avx2 = "avx2,fma", avx512 = "avx512f"}
  plan.attribute = features[target]
                   and '__attribute__((target("' .. features[target] .. '"))) ' or ""
  plan.includes = features[target] and {"immintrin.h"} or {}
  local op = layer.op
  local input = common.tensor(layer.layout, layer.in_h, layer.in_w, layer.m)
  local output = common.tensor(layer.layout, layer.out_h, layer.out_w, layer.out_c)
  local spatial = {
    batch = layer.batch, in_h = layer.in_h, in_w = layer.in_w, in_c = layer.m,
    out_h = layer.out_h, out_w = layer.out_w, kernel = layer.kernel,
    stride = layer.stride, dilation = layer.dilation, pad_top = layer.pad_top,
    pad_left = layer.pad_left, multiplier = layer.multiplier,
    weights_layout = layer.layout, bias = layer.bias == 1, target = target,
    channel_block = schedule.channel_block, tile_w = schedule.tile_w,
    unroll = schedule.unroll, input = input,
  }
  if op == "conv" then
    spatial.out_c, spatial.act, spatial.output = layer.n, layer.conv_act, output
    plan.conv = spatial
  elseif op == "dw" or op == "sep" then
    spatial.out_c, spatial.act = layer.mid_c, layer.dw_act
    spatial.output = op == "dw" and output or common.tile(layer.out_w, layer.mid_c)
    plan.dw = spatial
  end
  if op == "pw" or op == "sep" then
    local from = op == "pw" and input or common.tile(layer.out_w, layer.mid_c)
    local pw = {
      batch = layer.batch, in_h = op == "pw" and layer.in_h or layer.out_h,
      in_w = op == "pw" and layer.in_w or layer.out_w,
      in_c = op == "pw" and layer.m or layer.mid_c, out_h = layer.out_h,
      out_w = layer.out_w, out_c = layer.n, kernel = 1,
      stride = op == "pw" and layer.stride or 1, dilation = 1,
      pad_top = op == "pw" and layer.pad_top or 0,
      pad_left = op == "pw" and layer.pad_left or 0,
      weights_layout = layer.layout, bias = layer.bias == 1, target = target,
      act = layer.pw_act, pixel_block = schedule.pixel_block,
      oc_block = schedule.oc_block, pack = schedule.pack == 1,
      unroll = schedule.unroll, input = from, output = output,
    }
    plan.pw = pw
    if pw.pack then
      plan.packed_elements = common.packed_pointwise_elements(pw.in_c, pw.out_c,
                                                              pw.oc_block)
    end
  end
  if op == "sep" then
    local rows = schedule.fuse == 1 and math.min(schedule.tile_h, plan.rows)
                 or plan.rows
    plan.tile_rows = rows
    plan.scratch_bytes = rows * layer.out_w * layer.mid_c * 4
  end
  return plan
end

return common
