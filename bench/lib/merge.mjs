// `--merge OLD.json`: a run that re-measured only some rows keeps the other rows of an earlier
// full run (its --json file), each marked with the commit and date it was measured at, so
// RESULTS.md never passes an old figure off as a new one.

/**
 * Returns `run` with the rows it did not measure taken from `old`, in `order` (scenario ids).
 * `run.origins[id]` = { commit, date } for every carried row (kept through repeated merges).
 */
export function mergeRuns(old, run, order) {
  const measured = new Set(run.plan.map((p) => p.id));
  const carried = old.plan.filter((p) => !measured.has(p.id));
  const origins = {};
  for (const p of carried) origins[p.id] = old.origins?.[p.id] ?? { commit: old.env.commit, date: old.env.date };
  const rank = (id) => (order.indexOf(id) < 0 ? order.length : order.indexOf(id));
  const plan = [...run.plan, ...carried].sort((x, y) => rank(x.id) - rank(y.id));
  const ids = new Set(carried.map((p) => p.id));
  const commands = [...run.commands, ...old.commands.filter(([id]) => ids.has(id))];
  const haveConfig = new Set(run.configs.map(([k]) => k));
  const configs = [...run.configs, ...old.configs.filter(([k]) => !haveConfig.has(k))];
  const samples = [...run.samples, ...old.samples.filter((s) => ids.has(s.scenario))];
  return { ...run, plan, samples, commands, configs, origins };
}
