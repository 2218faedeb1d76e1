"""Which operations honour ``Idempotency-Key``: every create (a POST answering 201) and running a task, by the
operation ids of config/operations.py. tests/api check this set against the schema: a new create is either added
here or listed in ``NOT_IDEMPOTENT`` with its reason."""

from __future__ import annotations

IDEMPOTENT_OPERATIONS: frozenset[str] = frozenset(
    {
        "addComponentTeamMember",
        "addTeamMember",
        "claimDomain",
        "createComponent",
        "createComponentEnvVar",
        "createCredential",
        "createEnvVar",
        "createGlobalRuntime",
        "createInvitation",
        "createLookupTable",
        "createOrg",
        "createOrgMember",
        "createProject",
        "createProjectMember",
        "createRole",
        "createRuntime",
        "createTask",
        "createTeam",
        "hideInherited",
        "pushComponentVersion",
        "runTask",
        "shareTask",
    }
)

# Creates that do not take a key, and why.
NOT_IDEMPOTENT: dict[str, str] = {
    "createToken": "anonymous (no user to keep the key for); it issues a secret: ask again for another",
    "signUp": "anonymous: no user to keep the key for",
    "agentEnroll": "the runtime agents' protocol: no user (an enrollment token is used once anyway)",
    "createEnrollmentToken": "issues a one-time secret: a lost answer is recovered by asking for another",
    "createOtpDevice": "issues a second factor's secret: a lost answer is recovered by starting again",
    "regenerateBackupCodes": "issues second-factor codes: a lost answer is recovered by asking again",
    "regenerateSsoRecoveryCodes": "issues break-glass codes: a lost answer is recovered by asking again",
}
