//! [`channel_plugin!`](crate::channel_plugin): the `Plugin` implementation and C entry point of
//! an identity-card channel, the same for kdhs and kec, so each plugin states only its name and
//! how its [`Channel`](crate::Channel) is built.

/// Defines the plugin type `$ty` named `$name` (a `Plugin` whose `init` builds a
/// [`Channel`](crate::Channel) with `$build(config, host, clock)` on the real host and the system
/// clock, and whose `handle_http` is [`Channel::handle`](crate::Channel::handle)), and exports
/// it with `nesca_plugin_api::export_plugin!`. Use it once, at the root of the plugin's cdylib.
///
/// `$build` is a `fn(serde_json::Value, Arc<dyn HostCalls>, Arc<dyn Clock>) -> Result<Channel,
/// ChannelError>`; an `Err` stops nesca's start with its message (which names the key).
#[macro_export]
macro_rules! channel_plugin {
    ($(#[$meta:meta])* $ty:ident, $name:literal, $build:path) => {
        $(#[$meta])*
        pub struct $ty {
            channel: $crate::Channel,
        }

        impl $crate::__private::Plugin for $ty {
            const NAME: &'static str = $name;
            const VERSION: &'static str = env!("CARGO_PKG_VERSION");

            fn init(
                config: $crate::__private::Value,
                host: $crate::__private::Host,
            ) -> ::std::result::Result<Self, $crate::__private::InitError> {
                let channel = $build(
                    config,
                    ::std::sync::Arc::new(host),
                    ::std::sync::Arc::new($crate::SystemClock),
                )?;
                Ok($ty { channel })
            }

            fn handle_http(
                &self,
                request: $crate::__private::HttpRequest,
            ) -> $crate::__private::HttpResponse {
                self.channel.handle(&request)
            }
        }

        $crate::__private::export_plugin!($ty);
    };
}

/// What [`channel_plugin!`](crate::channel_plugin) names; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use nesca_plugin_api::{export_plugin, Host, HttpRequest, HttpResponse, InitError, Plugin};
    pub use serde_json::Value;
}
