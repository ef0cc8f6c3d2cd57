-- Test-driving Lua for a real Neovim, appended after the README's own snippet (see
-- tests/test_neovim.py). It points the README's config at the scripted model, answers
-- pickers the way a user would (vim.ui.select), records what the user could see, and
-- writes it all to $CODELOOP_TEST_OUT as JSON. The test's own steps are in T.steps.

local T = { result = { events = {}, selects = {}, progress = {}, errors = {} }, answers = {} }
_G.T = T

-- The README's config, with this machine's model server (a user's own settings).
vim.lsp.config("codeloop", {
  init_options = {
    settings = {
      model = "scripted-model",
      baseUrl = vim.env.CODELOOP_TEST_URL,
      apiKey = "sk-test-not-a-real-key",
    },
  },
})
vim.lsp.log.set_level("debug")

function T.log(what, data)
  table.insert(T.result.events, { what = what, data = data, t = vim.uv.now() })
end

function T.wait(ms, cond, what)
  if not vim.wait(ms, cond, 20) then
    error("timed out waiting for " .. what, 2)
  end
end

function T.client()
  return vim.lsp.get_clients({ name = "codeloop" })[1]
end

function T.lines(buf)
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n") .. "\n"
end

-- What a user sees in the windows: every window's buffer name and text.
function T.windows()
  local out = {}
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    local buf = vim.api.nvim_win_get_buf(win)
    table.insert(out, { name = vim.api.nvim_buf_get_name(buf), text = T.lines(buf) })
  end
  return out
end

function T.messages()
  return vim.api.nvim_exec2("messages", { output = true }).output
end

-- A picker answered like a user: the first rule whose `pick` matches an item's text wins;
-- its `before` runs first (the user looks, or types, before choosing).
vim.ui.select = function(items, opts, on_choice)
  local titles = {}
  for i, item in ipairs(items) do
    titles[i] = opts and opts.format_item and opts.format_item(item) or tostring(item.title or item)
  end
  local entry = { prompt = opts and opts.prompt or "", items = titles, kind = opts and opts.kind, windows = T.windows() }
  table.insert(T.result.selects, entry)
  for r, rule in ipairs(T.answers) do
    for i, title in ipairs(titles) do
      if title:find(rule.pick, 1, true) then
        table.remove(T.answers, r)
        if rule.before then rule.before(entry) end
        entry.chose = title
        on_choice(items[i], i)
        return
      end
    end
  end
  entry.chose = vim.NIL
  on_choice(nil, nil)
end

vim.api.nvim_create_autocmd("LspProgress", {
  callback = function(ev)
    local p = ev.data.params
    table.insert(T.result.progress, {
      token = p.token, kind = p.value.kind, title = p.value.title, message = p.value.message,
    })
  end,
})

function T.ended(n)
  local count = 0
  for _, p in ipairs(T.result.progress) do
    if p.kind == "end" then count = count + 1 end
  end
  return count >= n
end

-- Open a file and wait for codeloop to attach to it (vim.lsp.enable, on FileType).
function T.open(path)
  vim.cmd.edit(vim.fn.fnameescape(path))
  local buf = vim.api.nvim_get_current_buf()
  T.wait(60000, function()
    return #vim.lsp.get_clients({ name = "codeloop", bufnr = buf }) > 0
      and vim.lsp.get_clients({ name = "codeloop", bufnr = buf })[1].initialized
  end, "codeloop to attach")
  return buf
end

-- The actions codeloop offers on the cursor, as gra would ask for them.
function T.actions(buf)
  local client = T.client()
  local params = vim.lsp.util.make_range_params(0, client.offset_encoding)
  params.context = { diagnostics = {}, triggerKind = 1 }
  local res = vim.lsp.buf_request_sync(buf, "textDocument/codeAction", params, 5000) or {}
  local titles = {}
  for _, r in pairs(res) do
    for _, a in ipairs(r.result or {}) do
      table.insert(titles, a.title)
    end
  end
  return titles
end

function T.has_action(buf, prefix)
  for _, t in ipairs(T.actions(buf)) do
    if t:find(prefix, 1, true) then return true end
  end
  return false
end

local function finish()
  T.result.messages = T.messages()
  T.result.log_path = vim.lsp.get_log_path()
  local f = assert(io.open(vim.env.CODELOOP_TEST_OUT, "w"))
  f:write(vim.json.encode(T.result))
  f:close()
  vim.cmd("qa!")
end

vim.api.nvim_create_autocmd("VimEnter", {
  once = true,
  callback = function()
    vim.schedule(function()
      local ok, err = xpcall(function()
        for _, step in ipairs(T.steps or {}) do
          step()
        end
      end, debug.traceback)
      if not ok then table.insert(T.result.errors, err) end
      finish()
    end)
  end,
})

return T
