-- wrk script: POSTs pre-signed Stripe events, each thread its own share of the file, so
-- every request is a new event (verify, apply, commit), not a duplicate.
-- Arguments: FILE THREADS. Each line of FILE is "<Stripe-Signature>\t<body>".
local counter = 0
function setup(thread)
    thread:set("id", counter)
    counter = counter + 1
end

function init(args)
    requests = {}
    local threads = tonumber(args[2])
    local n = 0
    for line in io.lines(args[1]) do
        if n % threads == id then
            local tab = line:find("\t", 1, true)
            requests[#requests + 1] = wrk.format("POST", "/",
                { ["Stripe-Signature"] = line:sub(1, tab - 1), ["Content-Type"] = "application/json" }, line:sub(tab + 1))
        end
        n = n + 1
    end
    index = 0
end

function request()
    index = index + 1
    if index > #requests then index = 1 end
    return requests[index]
end
