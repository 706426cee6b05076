//! Calls held for the user's approval: the daemon answers an agent call its
//! automation policy does not let run on its own with HTTP 202
//! `{"pending_approval": Approval}` (docs/AGENTS.md), and nothing is done
//! until the user approves it.

use serde_json::{json, Value};

/// The approval in an answer that is `{"pending_approval": {…}}`, if it is one.
pub fn pending_approval(answer: &Value) -> Option<&Value> {
    let object = answer.as_object().filter(|o| o.len() == 1)?;
    object.get("pending_approval").filter(|a| a.is_object())
}

/// What the agent is told about a held call: the approval and what to do.
pub fn held(approval: &Value) -> Value {
    let tool = approval["tool"].as_str().unwrap_or("this call");
    let id = approval["id"].as_str().unwrap_or("ID");
    json!({
        "pending_approval": approval,
        "message": format!(
            "{tool} needs the user's approval: nothing was done yet. The user approves it \
             with `ui approvals approve {id}`; list_pending_approvals shows its state."
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_pending_approval_answer_is_one() {
        let approval = json!({"id": "ab12", "tool": "delete_workload", "state": "pending"});
        let answer = json!({"pending_approval": approval});
        assert_eq!(pending_approval(&answer), Some(&approval));
        assert_eq!(pending_approval(&json!({"items": []})), None);
        assert_eq!(pending_approval(&json!({"pending_approval": null})), None);
        assert_eq!(pending_approval(&json!("pending_approval")), None);

        let told = held(&approval);
        assert_eq!(told["pending_approval"], approval);
        assert_eq!(
            told["message"],
            "delete_workload needs the user's approval: nothing was done yet. The user \
             approves it with `ui approvals approve ab12`; list_pending_approvals shows its state."
        );
    }
}
