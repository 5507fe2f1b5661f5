-- Argo CD health check for kubellm.io/FineTuneJob (argocd-cm key
-- resource.customizations.health.kubellm.io_FineTuneJob). Argo CD calls a custom resource
-- healthy unless told otherwise; this reads the job's phase for the current generation:
-- Succeeded is Healthy (once served, when it hands its adapter to a deployment), Failed is
-- Degraded with the error's reason, Suspended is Suspended, anything else Progressing.
local hs = {status = "Progressing", message = "waiting for the kubellm operator"}
local generation = obj.metadata and obj.metadata.generation
local status = obj.status
if status == nil or status.phase == nil then
  return hs
end
if generation ~= nil and status.observedGeneration ~= generation then
  hs.message = "the operator has not yet observed generation " .. tostring(generation)
  return hs
end
local deployed = nil
for _, condition in ipairs(status.conditions or {}) do
  if condition.type == "Deployed" then
    deployed = condition
  end
end
if status.phase == "Succeeded" then
  if deployed ~= nil and deployed.status ~= "True" then
    hs.message = "trained; hand-off: " .. (deployed.message or deployed.reason or "")
    return hs
  end
  hs.status = "Healthy"
  hs.message = status.message or "succeeded"
  return hs
end
if status.phase == "Failed" then
  hs.status = "Degraded"
  local err = status.error or {}
  hs.message = (err.reason or "Failed") .. ": " .. (err.message or status.message or "")
  return hs
end
if status.phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = status.message or "suspended"
  return hs
end
hs.message = status.phase .. ": " .. (status.message or "")
return hs
