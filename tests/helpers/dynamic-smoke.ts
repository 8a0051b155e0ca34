/**
 * The scripted "dynamic smoke" workflow shared by the CLI and MCP tests of how dynamic phases
 * show: a list, a forEach review with 3 skeptics per finding, a pipeline stage, a converge loop, a
 * gate fixed on its second fix, and a final report. The agents are the two scripts below, written
 * as `agent.sh` and `skeptic.sh` into the project folder.
 */

/** The work agent: answers by the first word of its prompt (LIST, REVIEW, POLISH, HUNT, …). */
export const AGENT_SH = `p=$(cat)
case "$p" in
  LIST*) echo '{"files":["a.ts","b.ts","c.ts","d.ts","e.ts"]}';;
  REVIEW*) f=$(echo "$p" | awk '{print $2}'); echo "{\\"findings\\":[\\"bug in $f\\",\\"style in $f\\"]}";;
  POLISH*) echo "polished: $p";;
  HUNT*) n=$(ls hunt-* 2>/dev/null | wc -l); touch hunt-$n; if [ $n -lt 2 ]; then echo "{\\"findings\\":[\\"h$n\\"]}"; else echo '{"findings":["h0"]}'; fi;;
  FIXUP*) echo fixup;;
  REPORT*) echo "report: $p" | head -c 3000;;
  *) n=$(ls fixed-* 2>/dev/null | wc -l); touch fixed-$((n+1)); echo fixed;;
esac
`;
/** The skeptic: refutes "style" findings, upholds the rest. */
export const SKEPTIC_SH = `p=$(cat)
if echo "$p" | grep -q "style in"; then echo '{"refuted": true, "reasons": "style is not a bug"}'; else echo '{"refuted": false, "reasons": "holds"}'; fi
`;

/** The spec; a fresh object on every call. */
export function smokeSpec(): Record<string, unknown> {
  return {
    version: 1,
    name: 'dyn smoke',
    limits: { maxConcurrent: 3, retries: 0, agentTimeout: '60s' },
    agents: {
      // tier edit: HUNT and fix tasks leave marker files in the project (read_only agents cannot write it).
      sh: { runner: 'command', tier: 'edit', command: ['bash', '-c', 'bash ./agent.sh'] },
      skeptic: { runner: 'command', command: ['bash', '-c', 'bash ./skeptic.sh'] },
    },
    defaults: { agent: 'sh' },
    phases: [
      { id: 'list', prompt: 'LIST', schema: { type: 'object', properties: { files: { type: 'array' } }, required: ['files'] } },
      { id: 'review', forEach: { from: 'list', items: 'files', max: 3 }, prompt: 'REVIEW {{item}}', verify: { skeptics: 3 } },
      { id: 'polish', mode: 'pipeline', dependsOn: ['review'], prompt: 'POLISH {{item}} after {{prev}}' },
      { id: 'hunt', dependsOn: ['polish'], converge: { untilDry: 1, maxRounds: 4 }, prompt: 'HUNT seen: {{seen}}' },
      { id: 'fixup', dependsOn: ['hunt'], prompt: 'FIXUP', gate: { command: 'test -f fixed-2', maxIterations: 3 } },
      { id: 'report', dependsOn: ['fixup'], prompt: 'REPORT {{digest}}', final: true },
    ],
  };
}
