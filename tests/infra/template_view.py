"""Reading a synthesized template by construct: logical ids, properties, a role's policy statements."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack


class TemplateView:
    """Set `stack` and `resources` (the template's Resources); the lookups below use them."""

    stack: Stack
    resources: dict[str, Any]

    def id(self, construct: Any) -> str:
        child = getattr(construct, "node", None) and construct.node.default_child
        return str(self.stack.resolve((child or construct).logical_id))

    def props(self, construct: Any) -> dict[str, Any]:
        props: dict[str, Any] = self.resources[self.id(construct)]["Properties"]
        return props

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == kind}

    def role_statements(self, role: Any) -> list[dict[str, Any]]:
        ref = {"Ref": self.id(role)}
        return [
            statement
            for policy in self.of_type("AWS::IAM::Policy").values()
            if ref in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]

    def arn(self, construct: Any) -> dict[str, Any]:
        return {"Fn::GetAtt": [self.id(construct), "Arn"]}
