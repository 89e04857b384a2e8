CREATE TABLE `audit_entries` (
	`id` integer PRIMARY KEY NOT NULL,
	`event_id` text NOT NULL,
	`provider` text NOT NULL,
	`correlation_id` text NOT NULL,
	`action` text NOT NULL,
	`attempt` integer,
	`reason` text,
	`error_class` text,
	`error_code` text,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `audit_entries_event_id_idx` ON `audit_entries` (`event_id`);--> statement-breakpoint
CREATE TABLE `conversations` (
	`id` text PRIMARY KEY NOT NULL,
	`provider` text NOT NULL,
	`account_id` text NOT NULL,
	`participant_id` text NOT NULL,
	`created_at` integer NOT NULL
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `dead_letters` (
	`id` text PRIMARY KEY NOT NULL,
	`event_id` text NOT NULL,
	`provider` text NOT NULL,
	`correlation_id` text NOT NULL,
	`attempts` integer NOT NULL,
	`error_class` text NOT NULL,
	`error_code` text NOT NULL,
	`error_message` text NOT NULL,
	`payload_sealed` text NOT NULL,
	`status` text DEFAULT 'open' NOT NULL,
	`created_at` integer NOT NULL,
	`replayed_at` integer
) WITHOUT ROWID;
--> statement-breakpoint
CREATE INDEX `dead_letters_created_at_idx` ON `dead_letters` (`created_at`);--> statement-breakpoint
CREATE TABLE `messages` (
	`provider_message_id` text PRIMARY KEY NOT NULL,
	`conversation_id` text NOT NULL,
	`event_id` text NOT NULL,
	`kind` text NOT NULL,
	`text_sealed` text,
	`sent_at` integer NOT NULL,
	`created_at` integer NOT NULL
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `replies` (
	`event_id` text PRIMARY KEY NOT NULL,
	`conversation_id` text NOT NULL,
	`status` text NOT NULL,
	`claimed_at` integer NOT NULL,
	`provider_message_id` text,
	`text_sealed` text NOT NULL,
	`sent_at` integer
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `webhook_events` (
	`event_id` text PRIMARY KEY NOT NULL,
	`provider` text NOT NULL,
	`correlation_id` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`last_error_class` text,
	`last_error_code` text,
	`last_error_message` text,
	`received_at` integer NOT NULL,
	`updated_at` integer NOT NULL
) WITHOUT ROWID;
