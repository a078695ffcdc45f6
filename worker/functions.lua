#!lua name=nodefarm
-- nodefarm's Redis Functions: the hot steps of a run, applied atomically inside Redis.
--
-- nf_enqueue a validated run joins the queue (and every client hears the new queue size).
-- nf_admit  the next run of the queue starts running (when fewer than the maximum run): highest
--           priority level first, submitters taking turns within a level (nf_dequeue, nf_requeue, nf_front too).
-- nf_start  a node task begins: checks it is the live dispatch, counts the attempt, registers it on
--           its worker (for rescue), sends its start events; returns what the worker needs.
-- nf_done   a node finished: the mirror of nodes/core/state.py node_done (status, waiters, dispatch,
--           dedupe by cache key, routing, finish); one call per node, touching only what changes.
-- nf_publish the tasks of nodes that a Python step made ready (inside its transaction).
-- nf_finish a run ended (called here by nf_done, and by Python steps inside their transaction):
--           history entry, queue bookkeeping, the closing status and executing{node:null} events.
--
-- KEYS are keys.function_keys(pid, worker); their names are filled in below from worker/keys.py
-- (the marker line below is replaced at load time), so the order is defined in one place.
-- Values: JSON built by string concatenation from stored JSON fragments (never re-encoding what
-- Python encoded, so numbers keep their exact text); cjson only for strings and id lists.

--@KEYS@

local CLIENT_ONLY = {
  execution_start = true, execution_cached = true, execution_success = true,
  execution_error = true, executing = true, executed = true,
}

local function J(s)
  return cjson.encode(s)
end

-- ComfyUI's routing (worker/events.py route): "*" everyone, a client id, or "" nobody live.
local function route(event, client)
  if event == 'status' then return '*' end
  if client ~= '' then return client end
  if CLIENT_ONLY[event] then return '' end
  return '*'
end

local function status_data(queue, running)
  local remaining = redis.call('ZCARD', queue) + redis.call('ZCARD', running)
  return '{"status":{"exec_info":{"queue_remaining":' .. remaining .. '}}}'
end

-- a status event for every client, outside any run (queue changes)
local function broadcast_status(events, queue, running)
  redis.call('XADD', events, 'MAXLEN', '~', GLOBAL_MAXLEN, '*', 'pid', '', 'to', '*', 'type', 'status',
    'data', status_data(queue, running))
end

local function emit(keys, pid, client, event, data)
  local to = route(event, client)
  redis.call('XADD', keys[K.events], 'MAXLEN', '~', GLOBAL_MAXLEN, '*', 'pid', pid, 'to', to, 'type', event, 'data', data)
  redis.call('XADD', keys[K.run_events], 'MAXLEN', '~', RUN_MAXLEN, '*', 'pid', pid, 'to', to, 'type', event, 'data', data)
end

-- display, parent (or nil) and real node id of a node
local function ids(keys, nid)
  local d = redis.call('HGET', keys[K.disp], nid)
  if not d then return nid, nil, nid end
  local t = cjson.decode(d)
  local parent = t[2]
  if parent == cjson.null then parent = nil end
  return t[1], parent, t[3]
end

local function progress_delta(keys, pid, nid, value, max, state)
  local display, parent, real = ids(keys, nid)
  local entry = '{"value":' .. value .. ',"max":' .. max .. ',"state":"' .. state .. '","node_id":' .. J(nid)
    .. ',"prompt_id":' .. J(pid) .. ',"display_node_id":' .. J(display) .. ',"parent_node_id":'
    .. (parent and J(parent) or 'null') .. ',"real_node_id":' .. J(real) .. '}'
  return '{"prompt_id":' .. J(pid) .. ',"nodes":{' .. J(nid) .. ':' .. entry .. '}}'
end

-- the run is live: returns its client id ("" for none), or nil when it ended or does not exist
local function live(keys)
  local meta = redis.call('HMGET', keys[K.meta], 'client', 'end')
  if not meta[1] or (meta[2] and meta[2] ~= '') then return nil end
  return meta[1]
end

local function is_current(keys, nid, seq)
  return redis.call('HGET', keys[K.status], nid) == 'q' and redis.call('HGET', keys[K.seq], nid) == seq
end

local function list_remove(list, value)
  local rest, found = {}, false
  for _, x in ipairs(list) do
    if x == value and not found then found = true else rest[#rest + 1] = x end
  end
  return rest, found
end

local function list_add(hash, field, value)
  local raw = redis.call('HGET', hash, field)
  local list = raw and cjson.decode(raw) or {}
  for _, x in ipairs(list) do
    if x == value then return end
  end
  list[#list + 1] = value
  redis.call('HSET', hash, field, cjson.encode(list))
end

-- A node task on its Celery queue: the message kombu's Redis transport would push for
-- send_task(NODE_TASK, [pid, nid, seq]) (Celery protocol 2, JSON body, no body encoding), so the
-- task leaves in the same atomic step that made the node ready. For Flower and `celery inspect`, its
-- name (shadow) and args (argsrepr) say what it is ("nf.node:KSampler", "KSampler #3 of <run>"), and
-- nf_sent (when it was queued, the state Redis's clock) lets the worker measure its wait (worker/metrics.py).
local function node_class(keys, nid)
  local spec = redis.call('HGET', keys[K.spec], nid) or ''
  local class = string.match(spec, '^{"class_type":%s*"([^"\\]*)"')
  if class then return class end
  local ok, decoded = pcall(cjson.decode, spec)
  if ok and type(decoded) == 'table' and type(decoded.class_type) == 'string' then return decoded.class_type end
  return '?'
end

local function publish(keys, pid, nid, seq, holder)
  local n = redis.call('INCR', MESSAGE_SEQ)
  local h = redis.sha1hex(pid .. '\0' .. nid .. '\0' .. seq .. '\0' .. n)
  local id = string.sub(h, 1, 8) .. '-' .. string.sub(h, 9, 12) .. '-' .. string.sub(h, 13, 16) .. '-'
    .. string.sub(h, 17, 20) .. '-' .. string.sub(h, 21, 32)
  local queue = holder ~= '' and (WORKER_QUEUE_PREFIX .. holder) or SHARED_QUEUE
  local args = '[' .. J(pid) .. ',' .. J(nid) .. ',' .. seq .. ']'
  local body = '[' .. args .. ',{},{"callbacks":null,"errbacks":null,"chain":null,"chord":null}]'
  local class = node_class(keys, nid)
  local shown = class .. ' #' .. nid .. ' of ' .. pid .. (seq ~= '1' and (' (dispatch ' .. seq .. ')') or '')
  local t = redis.call('TIME')
  local message = '{"body":' .. J(body) .. ',"content-encoding":"utf-8","content-type":"application/json","headers":{'
    .. '"lang":"py","task":"' .. NODE_TASK .. '","id":"' .. id .. '","shadow":' .. J(NODE_TASK .. ':' .. class) .. ',"eta":null,"expires":null,'
    .. '"group":null,"group_index":null,"retries":0,"timelimit":[null,null],"root_id":"' .. id .. '","parent_id":null,'
    .. '"argsrepr":' .. J(shown) .. ',"kwargsrepr":"{}","origin":"nodefarm","ignore_result":true,'
    .. '"nf_sent":' .. t[1] .. '.' .. string.format('%06d', tonumber(t[2])) .. ','
    .. '"replaced_task_nesting":0,"stamped_headers":null,"stamps":{}},"properties":{"correlation_id":"' .. id .. '",'
    .. '"reply_to":null,"delivery_mode":2,"delivery_info":{"exchange":"","routing_key":' .. J(queue) .. '},'
    .. '"priority":0,"delivery_tag":"' .. string.sub(h, 1, 8) .. '-' .. string.sub(h, 33, 40) .. '"}}'
  redis.call('LPUSH', queue, message)
end

-- state.py _dispatch: queue a ready node, unless an identical one (same cache key) is queued.
-- alive_after (unix s): a worker whose heartbeat is older is taken for dead (no preference for it).
local function dispatch(keys, pid, nid, out, alive_after)
  local key = redis.call('HGET', keys[K.key], nid)
  if string.sub(key, 1, 2) ~= 'u:' then
    local other = redis.call('HGET', keys[K.keyq], key)
    if other and other ~= nid and redis.call('HGET', keys[K.status], other) == 'q' then
      list_add(keys[K.deps], nid, other)
      list_add(keys[K.waiters], other, nid)
      return
    end
    redis.call('HSET', keys[K.keyq], key, nid)
  end
  redis.call('HSET', keys[K.status], nid, 'q')
  redis.call('HDEL', keys[K.deps], nid)
  local seq = redis.call('HINCRBY', keys[K.seq], nid, 1)
  -- state.py route: the worker holding an input only in memory, else any worker ...
  local holder = ''
  local srcs = redis.call('HGET', keys[K.srcs], nid)
  local sources = srcs and cjson.decode(srcs) or {}
  for _, src in ipairs(sources) do
    local h = redis.call('HGET', keys[K.holders], src)
    if h then holder = h break end
  end
  -- ... and, beyond it, locality: the live worker holding a big input, when nothing waits in its queue
  -- (and another worker is alive: with one, every queue leads to it)
  if holder == '' and redis.call('ZCOUNT', keys[K.workers], alive_after, '+inf') > 1 then
    for _, src in ipairs(sources) do
      local w = redis.call('HGET', keys[K.near], src)
      if w then
        local beat = redis.call('ZSCORE', keys[K.workers], w)
        if beat and tonumber(beat) >= alive_after and redis.call('LLEN', WORKER_QUEUE_PREFIX .. w) == 0 then
          holder = w
        end
        break
      end
    end
  end
  out[#out + 1] = {nid, tostring(seq), holder}
  publish(keys, pid, nid, tostring(seq), holder)
end

local function finish(keys, pid, client, outcome, now)
  local item = redis.call('GET', keys[K.item]) or 'null'
  local ui = redis.call('HGETALL', keys[K.ui])
  local outputs, meta = {}, {}
  for i = 1, #ui, 2 do
    local nid = ui[i]
    local display, parent, real = ids(keys, nid)
    outputs[#outputs + 1] = J(nid) .. ':' .. ui[i + 1]
    meta[#meta + 1] = J(nid) .. ':{"node_id":' .. J(nid) .. ',"display_node":' .. J(display) .. ',"parent_node":'
      .. (parent and J(parent) or 'null') .. ',"real_node_id":' .. J(real) .. '}'
  end
  local msgs = redis.call('LRANGE', keys[K.msgs], 0, -1)
  local ok = outcome == 'success'
  local entry = '{"prompt":' .. item .. ',"outputs":{' .. table.concat(outputs, ',') .. '},"status":{"status_str":"'
    .. (ok and 'success' or 'error') .. '","completed":' .. (ok and 'true' or 'false') .. ',"messages":['
    .. table.concat(msgs, ',') .. ']},"meta":{' .. table.concat(meta, ',') .. '}}'
  redis.call('HSET', keys[K.meta], 'end', outcome)
  redis.call('HINCRBY', METRICS, '["runs",' .. J(outcome) .. ']', 1)  -- runs ended, by outcome (worker/metrics.py)
  redis.call('SET', keys[K.history_entry], entry)
  redis.call('ZADD', keys[K.history], tonumber(now) / 1000, pid)
  redis.call('ZREM', keys[K.running], pid)
  redis.call('DEL', keys[K.cancel])
  emit(keys, pid, client, 'status', status_data(keys[K.queue], keys[K.running]))
  emit(keys, pid, client, 'executing', '{"node":null,"prompt_id":' .. J(pid) .. '}')
  for i = 1, STATE_PARTS do
    redis.call('EXPIRE', keys[i], STATE_TTL)
  end
  redis.call('EXPIRE', keys[K.run_events], EVENTS_TTL)
  redis.call('ZREMRANGEBYSCORE', keys[K.computed], '-inf', '(' .. (tonumber(now) - COMPUTED_TTL * 1000))
end

-- nf_start(KEYS, pid, nid, seq, running payload, max attempts)
-- -> {0} when not the live dispatch, else {1, spec, resolve, client, attempts, cancelled, {src, key, status, made, ...},
--    computed 0|1, nodes of the run not finished yet}
local function nf_start(keys, args)
  local pid, nid, seq, payload, max_attempts = args[1], args[2], args[3], args[4], tonumber(args[5])
  redis.call('HDEL', keys[K.worker_reserved], pid .. ' ' .. nid .. ' ' .. seq)  -- taken, no longer waiting (rescue.py)
  local client = live(keys)
  if not client or not is_current(keys, nid, seq) then return {0} end
  local attempts = redis.call('HINCRBY', keys[K.attempts], nid .. ':' .. seq, 1)
  redis.call('HSET', keys[K.worker_running], pid .. ' ' .. nid, payload)
  local cancelled = redis.call('EXISTS', keys[K.cancel])
  local spec = redis.call('HGET', keys[K.spec], nid)
  local resolve = redis.call('HGET', keys[K.resolve], nid) or ''
  -- a node of another run computed this key lately: its result may be stored, worth a look first
  local computed = redis.call('ZSCORE', keys[K.computed], redis.call('HGET', keys[K.key], nid)) and 1 or 0
  local sources = {}
  local srcs = redis.call('HGET', keys[K.srcs], nid)
  local wanted = srcs and cjson.decode(srcs) or {}
  if resolve ~= '' then wanted = cjson.decode(resolve)['sources'] end
  for _, src in ipairs(wanted) do
    sources[#sources + 1] = src
    sources[#sources + 1] = redis.call('HGET', keys[K.key], src) or ''
    sources[#sources + 1] = redis.call('HGET', keys[K.status], src) or ''
    sources[#sources + 1] = redis.call('HGET', keys[K.made], src) or ''
  end
  if cancelled == 0 and attempts <= max_attempts and resolve == '' then
    emit(keys, pid, client, 'progress_state', progress_delta(keys, pid, nid, '0.0', '1.0', 'running'))
    local display = ids(keys, nid)
    emit(keys, pid, client, 'executing', '{"node":' .. J(nid) .. ',"display_node":' .. J(display) .. ',"prompt_id":' .. J(pid) .. '}')
  end
  local pending = tonumber(redis.call('HGET', keys[K.meta], 'pending') or '0')
  return {1, spec, resolve, client, attempts, cancelled, sources, computed, pending}
end

-- state.py _complete: a node is done; what waited for it is dispatched, identical nodes are done too
local function complete(keys, pid, client, nid, ran, holder, worker, near, ui, now, alive_after, out)
  local key = redis.call('HGET', keys[K.key], nid)
  if redis.call('HGET', keys[K.keyq], key) == nid then redis.call('HDEL', keys[K.keyq], key) end
  redis.call('HSET', keys[K.status], nid, 'd')
  redis.call('HINCRBY', keys[K.meta], 'pending', -1)
  if holder ~= '' then redis.call('HSET', keys[K.holders], nid, holder) end
  if worker ~= '' then redis.call('HSET', keys[K.made], nid, worker) end
  if near ~= '' then redis.call('HSET', keys[K.near], nid, near) end
  if ran == '1' then
    redis.call('RPUSH', keys[K.executed], nid)
    if string.sub(key, 1, 2) ~= 'u:' then redis.call('ZADD', keys[K.computed], now, key) end
  end
  if ui ~= '' then redis.call('HSET', keys[K.ui], nid, ui) end
  -- state.py done_events: executed with its ui (when it has one), then its registry entry, finished
  if ui ~= '' then
    local display = ids(keys, nid)
    emit(keys, pid, client, 'executed', '{"node":' .. J(nid) .. ',"display_node":' .. J(display) .. ',"output":'
      .. ui .. ',"prompt_id":' .. J(pid) .. '}')
  end
  emit(keys, pid, client, 'progress_state', progress_delta(keys, pid, nid, '1', '1', 'finished'))
  local waiting = redis.call('HGET', keys[K.waiters], nid)
  if not waiting then return end
  redis.call('HDEL', keys[K.waiters], nid)
  for _, waiter in ipairs(cjson.decode(waiting)) do
    local raw = redis.call('HGET', keys[K.deps], waiter)
    if raw then
      local rest, found = list_remove(cjson.decode(raw), nid)
      if found then
        if #rest == 0 then
          redis.call('HDEL', keys[K.deps], waiter)
          if redis.call('HGET', keys[K.status], waiter) == 'w' then
            if string.sub(key, 1, 2) ~= 'u:' and redis.call('HGET', keys[K.key], waiter) == key then
              complete(keys, pid, client, waiter, '0', holder, worker, near, ui, now, alive_after, out)
            else
              dispatch(keys, pid, waiter, out, alive_after)
            end
          end
        else
          redis.call('HSET', keys[K.deps], waiter, cjson.encode(rest))
        end
      end
    end
  end
end

-- nf_done(KEYS, pid, nid, seq, now ms, ran 0|1, holder, ui JSON or "", worker, result bytes, alive after (unix s))
-- -> {0} when not the live dispatch, else {1, finished 0|1, {{nid, seq, holder}, ...}}
local function nf_done(keys, args)
  local pid, nid, seq, now, ran, holder, ui, worker = args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8]
  local nbytes, alive_after = tonumber(args[9]), tonumber(args[10])
  local client = live(keys)
  if not client or not is_current(keys, nid, seq) then return {0} end
  redis.call('HDEL', keys[K.worker_running], pid .. ' ' .. nid)
  redis.call('HINCRBY', keys[K.meta], 'ver', 1)
  local out = {}
  local made = ran == '1' and worker or ''
  complete(keys, pid, client, nid, ran, holder, made, nbytes >= BIG_RESULT and made or '', ui, now, alive_after, out)
  if tonumber(redis.call('HGET', keys[K.meta], 'pending')) <= 0 then
    local data = '{"prompt_id":' .. J(pid) .. ',"timestamp":' .. now .. '}'
    redis.call('RPUSH', keys[K.msgs], '["execution_success",' .. data .. ']')
    emit(keys, pid, client, 'execution_success', data)
    finish(keys, pid, client, 'success', now)
    return {1, 1, out}
  end
  return {1, 0, out}
end

-- nf_publish(KEYS, pid, n, nid 1, seq 1, holder 1, ...): the tasks of nodes a Python step made ready,
-- queued inside that step's transaction
local function nf_publish(keys, args)
  local pid, n = args[1], tonumber(args[2])
  for i = 0, n - 1 do
    publish(keys, pid, args[3 + 3 * i], args[4 + 3 * i], args[5 + 3 * i])
  end
  return n
end

-- nf_finish(KEYS, pid, outcome, now ms): called inside the transaction of a Python step that ended a run
local function nf_finish(keys, args)
  local client = redis.call('HGET', keys[K.meta], 'client') or ''
  finish(keys, args[1], client, args[2], args[3])
  return 1
end

-- The queue (worker/prompt_queue.py says why this order). Every pending run is in `queue` (id ->
-- number) and in one lane, that of its priority level and submitter (id -> number); `levels` holds the
-- levels with pending runs (level -> -level), a level's turns its submitters with pending runs (submitter
-- -> turn: the lowest goes next; a served or newly arrived submitter takes the next turn number, so
-- it goes after every other one waiting), `place` each pending run's [level, submitter], `who` the
-- submitter of each running run (entries of runs no longer running are dropped as they are found).
-- KEYS from `first` on: queue, running, events, levels, turn, place, who; ARGV 1, 2: the lane and
-- turns key prefixes (worker/keys.py).
local function Q(keys, first, args)
  return {queue = keys[first], running = keys[first + 1], events = keys[first + 2], levels = keys[first + 3],
    turn = keys[first + 4], place = keys[first + 5], who = keys[first + 6], lanes = args[1], turns = args[2]}
end

local function queue_remove(q, pid)
  local removed = redis.call('ZREM', q.queue, pid)
  local raw = redis.call('HGET', q.place, pid)
  if raw then
    redis.call('HDEL', q.place, pid)
    local place = cjson.decode(raw)
    local level, submitter = place[1], place[2]
    local lane = q.lanes .. level .. ':' .. submitter
    redis.call('ZREM', lane, pid)
    if redis.call('EXISTS', lane) == 0 then
      redis.call('ZREM', q.turns .. level, submitter)
      if redis.call('EXISTS', q.turns .. level) == 0 then redis.call('ZREM', q.levels, level) end
    end
  end
  return removed
end

local function queue_add(q, pid, number, level, submitter)
  queue_remove(q, pid)
  local turns = q.turns .. level
  redis.call('ZADD', q.queue, number, pid)
  redis.call('ZADD', q.lanes .. level .. ':' .. submitter, number, pid)
  if not redis.call('ZSCORE', turns, submitter) then
    redis.call('ZADD', turns, redis.call('INCR', q.turn), submitter)
  end
  redis.call('ZADD', q.levels, -tonumber(level), level)
  redis.call('HSET', q.place, pid, cjson.encode({level, submitter}))
end

-- the run to admit: the head of the lane of the submitter whose turn it is, at the highest level where
-- a submitter under the cap (0: none) waits -> pid, number, level, submitter (nil when none may start).
-- Runs queued before lanes existed (no level holds anything) go by number.
local function queue_pick(q, cap)
  local counts = {}
  local who = redis.call('HGETALL', q.who)
  for i = 1, #who, 2 do
    if redis.call('ZSCORE', q.running, who[i]) then
      counts[who[i + 1]] = (counts[who[i + 1]] or 0) + 1
    else
      redis.call('HDEL', q.who, who[i])
    end
  end
  for _, level in ipairs(redis.call('ZRANGE', q.levels, 0, -1)) do
    for _, submitter in ipairs(redis.call('ZRANGE', q.turns .. level, 0, cap > 0 and -1 or 0)) do
      if cap <= 0 or (counts[submitter] or 0) < cap then
        local head = redis.call('ZRANGE', q.lanes .. level .. ':' .. submitter, 0, 0, 'WITHSCORES')
        if #head > 0 then return head[1], head[2], level, submitter end
      end
    end
  end
  if redis.call('ZCARD', q.levels) == 0 then
    local head = redis.call('ZRANGE', q.queue, 0, 0, 'WITHSCORES')
    if #head > 0 then return head[1], head[2], nil, '' end
  end
  return nil
end

-- nf_enqueue(KEYS = item, private, queue keys; lane prefix, turns prefix, pid, number, item JSON,
-- private JSON or "", level, submitter): queues a validated run in its lane and tells every client the
-- new queue size, in one step
local function nf_enqueue(keys, args)
  local q = Q(keys, 3, args)
  redis.call('SET', keys[1], args[5])
  if args[6] ~= '' then redis.call('SET', keys[2], args[6]) end
  queue_add(q, args[3], args[4], args[7], args[8])
  broadcast_status(q.events, q.queue, q.running)
  return 1
end

-- nf_admit(KEYS = queue keys; lane prefix, turns prefix, max active runs, runs per client (0: any)):
-- moves the next run (queue_pick) to running if fewer than the maximum run, gives its submitter's
-- next run the next turn, and tells every client the queue size. -> its prompt id, or false
local function nf_admit(keys, args)
  local q = Q(keys, 1, args)
  if redis.call('ZCARD', q.running) >= tonumber(args[3]) then return false end
  local pid, number, level, submitter = queue_pick(q, tonumber(args[4]))
  if not pid then return false end
  queue_remove(q, pid)
  if level and redis.call('ZSCORE', q.turns .. level, submitter) then
    redis.call('ZADD', q.turns .. level, 'XX', redis.call('INCR', q.turn), submitter)
  end
  redis.call('ZADD', q.running, number, pid)
  redis.call('HSET', q.who, pid, submitter)
  broadcast_status(q.events, q.queue, q.running)
  return pid
end

-- nf_dequeue(KEYS = queue keys, then item and private key of each run; lane prefix, turns prefix,
-- pids...): takes pending runs off the queue and drops their items; a status event when any was
-- pending. -> how many were
local function nf_dequeue(keys, args)
  local q = Q(keys, 1, args)
  local removed = 0
  for i = 3, #args do
    if queue_remove(q, args[i]) == 1 then
      removed = removed + 1
      redis.call('DEL', keys[8 + 2 * (i - 3)], keys[9 + 2 * (i - 3)])
    end
  end
  if removed > 0 then broadcast_status(q.events, q.queue, q.running) end
  return removed
end

-- nf_front(KEYS = item, queue keys; lane prefix, turns prefix, pid, item JSON, level, submitter, number):
-- makes a pending run the next one admitted: at ``level`` (no pending level above it), with ``number``
-- (below every other pending run's) in its lane, its submitter taking the first turn of the level.
-- Python read the queue to choose level and number; when the queue moved meanwhile so that they no
-- longer put the run first, nothing changes. -> 1 moved, 0 not pending, -1 read again
local function nf_front(keys, args)
  local q = Q(keys, 2, args)
  local pid, level, number = args[3], args[5], tonumber(args[7])
  if not redis.call('ZSCORE', q.queue, pid) then return 0 end
  local top = redis.call('ZRANGE', q.levels, 0, 0)
  if #top > 0 and tonumber(top[1]) > tonumber(level) then return -1 end
  local low = redis.call('ZRANGE', q.queue, 0, 1, 'WITHSCORES')
  for i = 1, #low, 2 do
    if low[i] ~= pid and tonumber(low[i + 1]) <= number then return -1 end
  end
  redis.call('SET', keys[1], args[4])
  queue_add(q, pid, args[7], level, args[6])
  local first = redis.call('ZRANGE', q.turns .. level, 0, 0, 'WITHSCORES')
  if first[1] ~= args[6] then
    redis.call('ZADD', q.turns .. level, tonumber(first[2]) - 1, args[6])
  end
  broadcast_status(q.events, q.queue, q.running)
  return 1
end

-- nf_requeue(KEYS = item, queue keys; lane prefix, turns prefix, pid, item JSON, level, submitter):
-- a pending run moves to another priority level (its item rewritten to say so), keeping its number.
-- -> 1, or 0 when it is not pending (nothing changes)
local function nf_requeue(keys, args)
  local q = Q(keys, 2, args)
  local number = redis.call('ZSCORE', q.queue, args[3])
  if not number then return 0 end
  redis.call('SET', keys[1], args[4])
  queue_add(q, args[3], number, args[5], args[6])
  broadcast_status(q.events, q.queue, q.running)
  return 1
end

redis.register_function('nf_start', nf_start)
redis.register_function('nf_admit', nf_admit)
redis.register_function('nf_enqueue', nf_enqueue)
redis.register_function('nf_dequeue', nf_dequeue)
redis.register_function('nf_requeue', nf_requeue)
redis.register_function('nf_front', nf_front)
redis.register_function('nf_done', nf_done)
redis.register_function('nf_finish', nf_finish)
redis.register_function('nf_publish', nf_publish)
redis.register_function{function_name = 'nf_version', callback = function() return VERSION end, flags = {'no-writes'}}
