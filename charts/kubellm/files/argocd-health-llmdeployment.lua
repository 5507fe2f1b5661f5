-- Argo CD health check for kubellm.io/LLMDeployment (argocd-cm key
-- resource.customizations.health.kubellm.io_LLMDeployment). It reads the same conditions
-- kstatus does: Healthy only while Ready is True for the current generation, Degraded while
-- Stalled is True, Progressing otherwise (a rollout, or a status not yet written).
local hs = {status = "Progressing", message = "waiting for the kubellm operator"}
local generation = obj.metadata and obj.metadata.generation
if obj.status == nil then
  return hs
end
if generation ~= nil and obj.status.observedGeneration ~= generation then
  hs.message = "the operator has not yet observed generation " .. tostring(generation)
  return hs
end
local conditions = {}
for _, condition in ipairs(obj.status.conditions or {}) do
  conditions[condition.type] = condition
end
local stalled, ready, reconciling = conditions["Stalled"], conditions["Ready"], conditions["Reconciling"]
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.reason .. ": " .. (stalled.message or "")
  return hs
end
if ready ~= nil and ready.status == "True" and ready.observedGeneration == generation then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  return hs
end
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = reconciling.reason .. ": " .. (reconciling.message or "")
elseif ready ~= nil then
  hs.message = ready.reason .. ": " .. (ready.message or "")
end
return hs
