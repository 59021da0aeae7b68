#!/usr/bin/python
# Copyright: portolan developers
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Run `portolan probe --format json` on the host and judge the result."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: portolan_probe
short_description: Check every planned flow of an appliance for real
description:
  - Runs C(portolan probe --format json) on the host, from the appliance's position, and
    returns each result.
  - Fails when a required flow is not acceptable, with one line per failed flow.
  - Changes nothing on the host; check mode runs the probe as well.
version_added: "0.1.0"
author: portolan developers
options:
  site:
    description: The site file.
    type: path
    default: /etc/portolan/site.toml
  command:
    description:
      - The command that runs portolan, split on spaces; a prefix is allowed
        (C(ip netns exec site1 portolan)).
    type: str
    default: portolan
  flows:
    description: Only these flow ids.
    type: list
    elements: str
  timeout:
    description: How long each probe waits for an answer (C(3s), C(500ms)).
    type: str
    default: 3s
  inbound_target:
    description:
      - Probe the inbound flows toward this address of the appliance instead of the
        outbound ones (run it from a host that stands where the peers stand).
    type: str
  fail_on_optional:
    description: Also fail when an optional flow is not acceptable.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Probe every outbound flow of the appliance
  portolan.firewall.portolan_probe:
    site: /etc/portolan/site.toml
  register: probe

- name: Show what was found
  ansible.builtin.debug:
    var: probe.summary
"""

RETURN = r"""
results:
  description: Every probe, as C(portolan probe --format json) reports it.
  returned: always
  type: list
  elements: dict
summary:
  description: Counts by verdict and the time taken.
  returned: always
  type: dict
failed_flows:
  description: One line per flow that is not acceptable, C(flow protocol host:port verdict detail).
  returned: always
  type: list
  elements: str
"""

import json

from ansible.module_utils.basic import AnsibleModule


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            site=dict(type="path", default="/etc/portolan/site.toml"),
            command=dict(type="str", default="portolan"),
            flows=dict(type="list", elements="str"),
            timeout=dict(type="str", default="3s"),
            inbound_target=dict(type="str"),
            fail_on_optional=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    argv = p["command"].split() + [
        "probe",
        "--site",
        p["site"],
        "--format",
        "json",
        "--timeout",
        p["timeout"],
    ]
    if p["flows"]:
        argv += ["--flows", ",".join(p["flows"])]
    if p["inbound_target"]:
        argv += ["--inbound", "--target", p["inbound_target"]]
    rc, out, err = module.run_command(argv)
    try:
        doc = json.loads(out)
    except ValueError:
        module.fail_json(
            msg="portolan probe gave no JSON (exit %d): %s" % (rc, err.strip()),
            rc=rc,
            stderr=err,
        )
    results = doc.get("results", [])
    failed = []
    for r in results:
        if r.get("ok"):
            continue
        if not r.get("required") and not p["fail_on_optional"]:
            continue
        failed.append(
            "%s %s %s:%s %s %s"
            % (
                r.get("flow"),
                r.get("protocol"),
                r.get("host") or r.get("address"),
                r.get("port"),
                r.get("verdict"),
                r.get("detail", ""),
            )
        )
    result = dict(
        changed=False,
        results=results,
        summary=doc.get("summary", {}),
        failed_flows=failed,
    )
    if failed:
        module.fail_json(
            msg="%d flow(s) not open:\n%s" % (len(failed), "\n".join(failed)), **result
        )
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
