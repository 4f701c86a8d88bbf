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
-- list of three statements, to be emitted `indent` columns in (the long
-- one is wrapped to stay within 100 columns).
function common.tap_bounds(axis, pos, var, indent)
  local base, d, last, k = var .. "_base", axis.dilation, axis.input - 1, axis.kernel - 1
  local inside = "(" .. last .. " - " .. base .. ")" .. (d > 1 and " / " .. d or "")
  local first = d > 1 and "(" .. (d - 1) .. " - " .. base .. ") / " .. d or "-" .. base
  local hi = string.format("const long %s_hi = %s > %d ? -1 : %s < %d ? %s : %d;", var, base,
                           last, inside, k, inside, k)
  if indent and indent + #hi > 100 then -- (emitted at `indent` columns)
    hi = string.format("const long %s_hi = %s > %d ? -1\n%s: %s < %d ? %s : %d;", var, base,
                       last, string.rep(" ", indent + 8), inside, k, inside, k)
  end
  return {
    string.format("const long %s = %s; /* input index of tap 0 */", base,
                  common.affine(pos, axis.stride, -axis.pad)),
    string.format("const long %s_lo = %s >= 0 ? 0 : %s;", var, base, first), hi}
end

-- The geometry every stage starts from (pointwise too, as a 1x1 kernel):
--   rows, cols     the border segments of each axis (common.segments), merged
--                  (common.merge_borders) when the taps are C loops
--   row_axis, col_axis, looped (taps in C loops: common.loops_taps with
--                  `most` taps unrolled; nil `most`: never looped)
--   blocks         the output channels in blocks of `block`
--   reads(ys, xs)  whether a row segment by a column segment reads the input
--   row_reads(ys), input_read: the same over a row, over every pixel
--   in_x(ox, kx)   the input offset of pixel ox under tap column kx
--   in_y(oy, ky)   the input row offset (within the image) of row oy under tap row ky
--   out_x(ox)      the output offset of pixel ox
--   uses           which of the stage function's parameters the code reads
--                  (unused: the list of the others), and whether the row loop
--                  needs n and oy
function common.stage_setup(st, block, most)
  local IN, OUT, S, D = st.input, st.output, st.stride, st.dilation
  local row_axis = {out = st.out_h, kernel = st.kernel, stride = S, dilation = D,
                    pad = st.pad_top, input = st.in_h}
  local col_axis = {out = st.out_w, kernel = st.kernel, stride = S, dilation = D,
                    pad = st.pad_left, input = st.in_w}
  local rows = common.segments(row_axis, false)
  local cols = common.segments(col_axis, false)
  local looped = most ~= nil and common.loops_taps(rows, cols, most)
  if st.unroll == "full" then
    rows = common.segments(row_axis, true)
  elseif looped then
    rows = common.merge_borders(rows, "ky")
  end
  if looped and st.unroll == "none" then cols = common.merge_borders(cols, "kx") end
  local s = {rows = rows, cols = cols, row_axis = row_axis, col_axis = col_axis,
             looped = looped, blocks = common.blocks(st.out_c, block)}
  function s.reads(ys, xs)
    return ys.clamped or xs.clamped or (ys.hi >= ys.lo and xs.hi >= xs.lo)
  end
  function s.row_reads(ys)
    for _, xs in ipairs(cols) do if s.reads(ys, xs) then return true end end
    return false
  end
  s.input_read = false
  for _, ys in ipairs(rows) do s.input_read = s.input_read or s.row_reads(ys) end
  -- the offset along one axis of output position o under tap k (numbers or names)
  local function along(o, k, pad, step)
    if type(k) == "number" then
      return common.mul(common.paren(common.affine(o, S, k * D - pad)), step)
    end
    return common.mul(common.paren(common.add(common.affine(o, S, -pad), common.mul(k, D))), step)
  end
  function s.in_x(ox, kx) return along(ox, kx, st.pad_left, IN.x) end
  function s.in_y(oy, ky) return along(oy, ky, st.pad_top, IN.y) end
  function s.out_x(ox) return common.mul(common.paren(ox), OUT.x) end
  -- the input is read through `in` (and w with it) only where a pixel has
  -- taps; an output tile is addressed from `origin`, as is an input tile
  local uses = {["in"] = s.input_read, w = s.input_read, b = st.bias,
                origin = OUT.tile or (IN.tile and s.input_read) or false}
  uses.n = not OUT.tile or (s.input_read and not IN.tile)
  uses.oy = st.unroll == "full" or #rows > 1 or not OUT.tile or
            (s.input_read and not IN.tile)
  s.uses = uses
  s.unused = common.unused(uses, {"in", "w", "b", "origin"})
  return s
end

-- `text` in lines of at most `width` characters, broken at spaces (a word
-- longer than that is a line of its own).
function common.words(text, width)
  local lines = {}
  for word in text:gmatch("%S+") do
    local last = lines[#lines]
    if last and #last + 1 + #word <= width then
      lines[#lines] = last .. " " .. word
    else
      lines[#lines + 1] = word
    end
  end
  return lines
end

-- The taps (ky, kx) of row segment ys by column segment kxs, unrolled:
-- {ky, kx, note} with note the C comment naming the tap.
function common.taps(ys, kxs)
  local list = {}
  for ky = ys.lo, ys.hi do
    for kx = kxs.lo, kxs.hi do
      list[#list + 1] = {ky = ky, kx = kx, note = "/* tap (" .. ky .. ", " .. kx .. ") */"}
    end
  end
  return list
end

-- "p1, p2, ..., pn": `pattern` (a string.format pattern of one %d) for 1..n.
function common.list(pattern, n)
  local items = {}
  for i = 1, n do items[i] = string.format(pattern, i) end
  return table.concat(items, ", ")
end

-- Whether fn(width) holds for some channel block of `blocks` (common.blocks).
function common.some_block(blocks, fn)
  return (blocks.full_end > 0 and fn(blocks.block)) or (blocks.rest > 0 and fn(blocks.rest))
end

-- Where a stage's weights are.  Depthwise: [k][k][c] (nhwc) or [c][k][k]
-- (nchw); `stride` between channels, tap(ky, kx) the offset of a tap's
-- weight of channel 0, at(ky, kx, co) that of channel co + i, and input(co)
-- the input channel output channel co + i reads (depth multiplier).
function common.depthwise_weights(st)
  local K, nhwc = st.kernel, st.weights_layout == "nhwc"
  local w = {stride = nhwc and 1 or K * K}
  function w.tap(ky, kx)
    local tap = common.add(common.mul(ky, K), kx)
    return nhwc and common.mul(common.paren(tap), st.out_c) or tap
  end
  function w.at(ky, kx, co)
    return common.add(w.tap(ky, kx), common.mul(common.paren(common.add(co, "i")), w.stride))
  end
  function w.input(co)
    if st.multiplier == 1 then return common.add(co, "i") end
    return "(" .. common.add(co, "i") .. ") / " .. st.multiplier
  end
  return w
end

-- Convolution: nhwc [k][k][m][n] (contiguous in n), nchw [n][m][k][k];
-- row(ky, kx, co) the address of the weights of input channel ci, tap (ky,
-- kx), output channels co.., `stride` between output channels.
function common.conv_weights(st)
  local K, M, N = st.kernel, st.in_c, st.out_c
  local nhwc = st.weights_layout == "nhwc"
  local w = {stride = nhwc and 1 or M * K * K}
  function w.row(ky, kx, co)
    local tap = common.add(common.mul(ky, K), kx)
    if nhwc then
      return common.add("w", common.add(common.add(common.mul(common.paren(tap), M * N),
                                                   "ci * " .. N), co))
    end
    return common.add("w", common.add(common.add(common.mul(common.paren(co), M * K * K),
                                                 "ci * " .. K * K), tap))
  end
  return w
end

-- Pointwise: packed [N/oc_block][M][oc_block] (contiguous), nhwc [m][n]
-- (contiguous), nchw [n][m] (stride M); as conv_weights, with one tap.
function common.pointwise_weights(st)
  local M, N, OB = st.in_c, st.out_c, st.oc_block
  local w = {stride = (st.pack or st.weights_layout == "nhwc") and 1 or M}
  function w.row(co)
    if st.pack then return common.add("w", common.add(common.mul(common.paren(co), M), "ci * " .. OB)) end
    if st.weights_layout == "nhwc" then return common.add("w", common.add("ci * " .. N, co)) end
    return common.add("w", common.add(common.mul(common.paren(co), M), "ci"))
  end
  return w
end

-- The names in `names` that `uses` does not mark used: the parameters a
-- function casts to void (only those its code never reads).
function common.unused(uses, names)
  local list = {}
  for _, name in ipairs(names) do
    if not uses[name] then list[#list + 1] = name end
  end
  return list
end

-- The opening of a loop over the `width` lanes i of an array block.  (A
-- block of one channel keeps its loop: the size estimate of
-- gen/generate.c counts on its bytes.)
function common.lanes(width)
  return "for (int i = 0; i < " .. width .. "; i++) {"
end

-- The opening of a loop of `var` over [lo, hi] (numbers, or names found at
-- run time), and what to index with: the name, or the number when the range
-- holds one value (then the opening is a plain block).
function common.for_each(var, lo, hi)
  if type(lo) == "number" and lo == hi then return "{", lo end
  return string.format("for (long %s = %s; %s <= %s; %s++) {", var, lo, var, hi, var), var
end

-- ": taps ky 0..2" for a comment on segment `seg` of a kernel wider than
-- one tap ("" for a pointwise stage, whose only tap is 0).
function common.taps_note(var, seg, kernel)
  if kernel == 1 then return "" end
  return ": taps " .. var .. " " .. seg.lo .. ".." .. seg.hi
end

-- `text` (one C statement or declaration) as it stands when it fits in
-- `width` columns (default 100) at `indent`; else broken after the commas
-- of its outermost argument list (of a declaration list when it calls
-- nothing), the rest indented 8 further.
function common.wrap(indent, text, width)
  width = width or 100
  if indent + #text <= width then return text end
  local open = text:find("%(")
  local level = open and 1 or 0
  local pieces, depth, start = {}, 0, 1
  for i = open or 1, #text do
    local c = text:sub(i, i)
    if c == "(" or c == "[" then
      depth = depth + 1
    elseif c == ")" or c == "]" then
      depth = depth - 1
    elseif c == "," and depth == level then
      pieces[#pieces + 1] = text:sub(start, i)
      start = i + 2 -- after ", "
    end
  end
  pieces[#pieces + 1] = text:sub(start)
  if open and indent + #pieces[1] > width then -- its first argument too: after the "("
    table.insert(pieces, 2, pieces[1]:sub(open + 1))
    pieces[1] = text:sub(1, open)
  end
  local lines, line = {}, pieces[1]
  local margin = string.rep(" ", indent + 8)
  local used = indent
  for i = 2, #pieces do
    if used + #line + 1 + #pieces[i] <= width then
      line = line .. " " .. pieces[i]
    else
      lines[#lines + 1] = line
      line, used = pieces[i], indent + 8
    end
  end
  lines[#lines + 1] = line
  return table.concat(lines, "\n" .. margin)
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

-- The activation as the micro-kernels number it (micro-kernel code).
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
  return ({neon = 4, avx2 = 8, avx512 = 16})[target]
end

-- The name simd.lua knows a stage's code by: its ISA, except that code
-- calling micro-kernels (for tcc, which has no intrinsics) is plain C.
function common.simd_target(st)
  return st.microkernels and "portable" or st.target
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
-- `microkernels`: the code is plain C for tcc that calls libsepconv's
-- micro-kernels of the ISA `target` (no intrinsics, no attributes), whose
-- pointwise register tile is `microkernel_pixels` pixels.
function common.plan(layer, schedule, target, microkernels, microkernel_pixels)
  local plan = {rows = layer.batch * layer.out_h, scratch_bytes = 0,
                packed_elements = 0, microkernels = microkernels and true or false}
  -- SIMD code carries its target on every function, so the file builds
  -- with plain `cc -O2` (no -m flags) and runs where the CPU has them.
  -- (`plan.attribute` is its own line: `${plan.attribute}static void f(...)`)
  local features = {avx2 = "avx2,fma", avx512 = "avx512f"}
  local headers = {avx2 = "immintrin.h", avx512 = "immintrin.h", neon = "arm_neon.h"}
  local isa = not plan.microkernels and target or "portable"
  plan.attribute = features[isa]
                   and '__attribute__((target("' .. features[isa] .. '")))\n' or ""
  plan.includes = headers[isa] and {headers[isa]} or {}
  local op = layer.op
  local input = common.tensor(layer.layout, layer.in_h, layer.in_w, layer.m)
  local output = common.tensor(layer.layout, layer.out_h, layer.out_w, layer.out_c)
  local spatial = {
    batch = layer.batch, in_h = layer.in_h, in_w = layer.in_w, in_c = layer.m,
    out_h = layer.out_h, out_w = layer.out_w, kernel = layer.kernel,
    stride = layer.stride, dilation = layer.dilation, pad_top = layer.pad_top,
    pad_left = layer.pad_left, multiplier = layer.multiplier,
    weights_layout = layer.layout, bias = layer.bias == 1, target = target,
    microkernels = plan.microkernels,
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
      microkernels = plan.microkernels,
      act = layer.pw_act, pixel_block = schedule.pixel_block,
      oc_block = schedule.oc_block, pack = schedule.pack == 1,
      unroll = op == "sep" and schedule.pw_unroll or schedule.unroll,
      input = from, output = output,
    }
    plan.pw = pw
    if pw.pack then
      plan.packed_elements = common.packed_pointwise_elements(pw.in_c, pw.out_c,
                                                              pw.oc_block)
    end
  end
  if op == "sep" then
    -- pixel tiles (fuse=2) where both stages are micro-kernel calls
    -- (channel-last, multiplier 1, packed); elsewhere they are one-row tiles
    if schedule.fuse == 2 and plan.microkernels and layer.layout == "nhwc" and
       layer.multiplier == 1 and plan.pw.pack then
      plan.tile_pixels = math.min(schedule.tile_h * microkernel_pixels, layer.out_w)
      plan.tile_rows = 1
      plan.scratch_bytes = plan.tile_pixels * layer.mid_c * 4
    else
      local rows = schedule.fuse == 0 and plan.rows or schedule.fuse == 2 and 1
                   or math.min(schedule.tile_h, plan.rows)
      plan.tile_rows = rows
      plan.scratch_bytes = rows * layer.out_w * layer.mid_c * 4
    end
  end
  if layer.dtype == "int8" then
    -- int8 pointwise rows handed to the micro-kernels (channel-last,
    -- unpadded) read weights libsepconv packs (sepconv_uk_qpack): the
    -- biases with in_zero folded in, then int16 weight pairs, in blocks of
    -- 16 channels, int32 elements; no other int8 code packs
    plan.qpacked = plan.microkernels and op == "pw" and layer.layout == "nhwc" and
                   layer.pad_top == 0 and layer.pad_left == 0
    local blocks = (layer.out_c + 15) // 16
    plan.packed_elements = plan.qpacked and blocks * 16 * (1 + (layer.m + 1) // 2) or 0
  end
  return plan
end

return common
