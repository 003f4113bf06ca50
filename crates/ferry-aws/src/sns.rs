//! Notifications to an Amazon SNS topic (the server's approval-waiting, failure, rollback and
//! release messages), published with the server's own identity in the topic's region.

use crate::error::AwsError;
use crate::session::Aws;

/// SNS subjects are at most 100 characters of printable ASCII.
fn subject(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '-'
            }
        })
        .take(100)
        .collect()
}

/// Publishes `message` to `topic` (an ARN); returns the message id.
pub async fn publish(
    aws: &Aws,
    topic: &str,
    title: &str,
    message: &str,
) -> Result<String, AwsError> {
    let region = topic.split(':').nth(3).filter(|r| !r.is_empty());
    let account = aws.own(region);
    let out = account
        .call(
            "sns:Publish",
            topic,
            aws_sdk_sns::Client::new(&account.config)
                .publish()
                .topic_arn(topic)
                .subject(subject(title))
                .message(message)
                .send(),
        )
        .await?;
    Ok(out.message_id().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn subjects_are_what_sns_accepts() {
        assert_eq!(
            super::subject("orders-3 waits\nfor prod ✓"),
            "orders-3 waits-for prod -"
        );
        assert_eq!(super::subject(&"x".repeat(200)).len(), 100);
    }
}
