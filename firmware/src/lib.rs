//! The mqsim firmware for the ESP32-C3, as a library: runs any [`App`] (the very value the
//! simulator tests) on the board, over esp-radio WiFi, embassy-net DHCP/TCP, with board inputs
//! (switches on GPIOs) and an optional sensor.
//!
//! A firmware binary is a few lines (see `src/main.rs`, the reference sketch, and
//! `examples/door-alarm/firmware`):
//! ```ignore
//! #[esp_rtos::main]
//! async fn main(spawner: Spawner) -> ! {
//!     let p = mqsim_firmware::init();
//!     let door = Input::new(p.GPIO5, InputConfig::default().with_pull(Pull::Up));
//!     spawner.spawn(mqsim_firmware::switch_task(Switch::new("door", door)).unwrap());
//!     let radio = Radio { timg0: p.TIMG0, sw_interrupt: p.FROM_CPU_INTR0, wifi: p.WIFI };
//!     mqsim_firmware::run(spawner, radio, Network::from_build_env(), device_config, app, NoSensor).await
//! }
//! ```
//!
//! Three embassy tasks run the device: the network stack's runner, the WiFi station (joins when
//! the device asks, reports the link up once DHCP has leased an address, and down on
//! disconnect), and the caller's task inside [`run`], the device's loop: the core's glue
//! (`mqsim::device::glue::Glue::settle`) after every input, then whichever comes first of a link
//! change, a socket event, a board input ([`report`], [`switch_task`]) or the device's wake-up.
//! All MQTT, publishing and reconnecting decisions are the core's and the application's; this
//! crate only moves bytes, time, link state, readings and input values.

#![no_std]

extern crate alloc;

mod board;
pub mod config;
mod inputs;
pub mod settings;

use core::net::Ipv4Addr;

use embassy_executor::Spawner;
use embassy_futures::select::{select4, Either4};
use embassy_net::{Runner, Stack, StackResources};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::channel::Channel;
use embassy_sync::signal::Signal;
use embassy_time::Timer;
use esp_alloc as _;
use esp_backtrace as _;
use esp_hal::clock::CpuClock;
use esp_hal::peripherals::{Peripherals, FROM_CPU_INTR0, TIMG0, WIFI};
use esp_hal::rng::Rng;
use esp_hal::timer::timg::TimerGroup;
use esp_println::println;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{AuthenticationMethodConfig, Config, Interface, WifiController};
use static_cell::StaticCell;

pub use board::{Dht22, NoSensor};
pub use inputs::{report, switch_task, Switch};
pub use mqsim;

use board::{EspClock, EspConsole, EspTransport, EspWifi, TcpEvent};
use mqsim::app::App;
use mqsim::device::glue::{Board, Clock, Glue, Input, Sensor};
use mqsim::device::{Device, DeviceConfig};

/// The device asked to join the access point.
static JOIN: Signal<CriticalSectionRawMutex, ()> = Signal::new();
/// Link changes for the device: up (joined, address leased) or down.
static LINK: Channel<CriticalSectionRawMutex, bool, 4> = Channel::new();

/// Heap: the WiFi driver (~70 KiB) plus the device (client buffers, queued messages, the
/// application's own state).
pub const HEAP_BYTES: usize = 96 * 1024;
/// Socket buffers: PubSubClient's 256-byte packets, esp-mqtt's 1 KiB, with room to spare.
const TCP_RX_BYTES: usize = 2048;
const TCP_TX_BYTES: usize = 2048;
/// Bytes read from the socket per read call.
const READ_CHUNK_BYTES: usize = 1024;
/// Wait between failed joins (arduino-esp32 retries on its own; so does this task).
const WIFI_RETRY_MS: u64 = 1_000;

/// The chip at power-on: clocks at their maximum and the heap ([`HEAP_BYTES`]). Returns the
/// peripherals: take the GPIOs your inputs need, and give [`Radio`] its three to [`run`].
pub fn init() -> Peripherals {
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    esp_alloc::heap_allocator!(size: HEAP_BYTES);
    peripherals
}

/// The peripherals [`run`] needs: the scheduler's timer and interrupt, and the radio.
pub struct Radio {
    pub timg0: TIMG0<'static>,
    pub sw_interrupt: FROM_CPU_INTR0<'static>,
    pub wifi: WIFI<'static>,
}

/// Where the device connects: the access point and the broker.
#[derive(Clone, Copy, Debug)]
pub struct Network {
    pub ssid: &'static str,
    /// Empty: an open network.
    pub password: &'static str,
    pub broker: (Ipv4Addr, u16),
}

impl Network {
    /// The build-time settings: `MQSIM_SSID`, `MQSIM_PASSWORD`, `MQSIM_BROKER_IP`,
    /// `MQSIM_BROKER_PORT` (see [`config`]).
    pub fn from_build_env() -> Network {
        Network {
            ssid: config::SSID,
            password: config::PASSWORD,
            broker: config::broker(),
        }
    }
}

/// Runs `app` on the board for ever: the MQTT library of `device_config`'s profile, WiFi and TCP
/// to `network`, `sensor` answering the application's `read_sensor` ([`NoSensor`] when it has
/// none), and the values sent with [`report`] (a [`switch_task`]) as its inputs. Panics when
/// `device_config` or the application's settings are invalid (`Device::new`'s checks).
pub async fn run<A: App, S: Sensor>(
    spawner: Spawner,
    radio: Radio,
    network: Network,
    device_config: DeviceConfig,
    app: A,
    sensor: S,
) -> ! {
    // The scheduler first: the WiFi driver runs on it.
    let timg0 = TimerGroup::new(radio.timg0);
    esp_rtos::start(timg0.timer0, radio.sw_interrupt);

    println!(
        "# mqsim firmware: profile {}, client id {}, broker {}:{}",
        device_config.profile.name(),
        device_config.client_id,
        network.broker.0,
        network.broker.1,
    );

    let mut controller =
        WifiController::new(radio.wifi, Default::default()).expect("WiFi controller");
    let auth = if network.password.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        AuthenticationMethodConfig::WpaWpa2Personal(
            network.password.try_into().expect("password too long"),
        )
    };
    let station = Config::Station(
        StationConfig::default()
            .with_ssid(network.ssid.try_into().expect("SSID too long"))
            .with_authentication(auth),
    );
    controller
        .set_config(&station)
        .expect("WiFi station config");

    let rng = Rng::new();
    let seed = (u64::from(rng.random()) << 32) | u64::from(rng.random());
    static RESOURCES: StaticCell<StackResources<3>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        Interface::station(),
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    spawner.spawn(net_task(runner).expect("net task"));
    spawner.spawn(wifi_task(controller, stack).expect("wifi task"));

    static RX: StaticCell<[u8; TCP_RX_BYTES]> = StaticCell::new();
    static TX: StaticCell<[u8; TCP_TX_BYTES]> = StaticCell::new();
    let transport = EspTransport::new(
        stack,
        RX.init([0; TCP_RX_BYTES]),
        TX.init([0; TCP_TX_BYTES]),
        network.broker,
    );
    let mut board = Board {
        clock: EspClock,
        console: EspConsole,
        wifi: EspWifi { join: &JOIN },
        sensor,
        transport,
    };

    let dev = match Device::new(device_config, app, board.clock.now()) {
        Ok(dev) => dev,
        Err(e) => panic!("bad settings: {e}"),
    };
    let mut glue = Glue::new(dev);
    let mut rbuf = [0u8; READ_CHUNK_BYTES];
    loop {
        let wake = glue.settle(&mut board).await;
        let sleep = async {
            match wake {
                Some(at) => Timer::at(embassy_time::Instant::from_micros(at.as_micros())).await,
                None => core::future::pending().await,
            }
        };
        let ev = select4(
            LINK.receive(),
            board.transport.next_event(&mut rbuf),
            inputs::next(),
            sleep,
        )
        .await;
        let now = board.clock.now();
        match ev {
            Either4::First(up) => glue.handle(now, Input::Wifi(up)),
            Either4::Second(TcpEvent::Connected) => glue.handle(now, Input::TcpConnected),
            Either4::Second(TcpEvent::Failed) => glue.handle(now, Input::TcpFailed),
            Either4::Second(TcpEvent::Bytes(n)) => glue.handle(now, Input::Bytes(&rbuf[..n])),
            Either4::Second(TcpEvent::Closed) => glue.handle(now, Input::TcpClosed),
            Either4::Third((name, value)) => glue.handle(now, Input::Board { name, value }),
            Either4::Fourth(()) => glue.handle(now, Input::Timer),
        }
    }
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Interface>) {
    runner.run().await
}

/// The WiFi station: joins when the device asks (again after every loss), reports the link up
/// once DHCP has an address, and down when the access point is lost.
#[embassy_executor::task]
async fn wifi_task(mut controller: WifiController<'static>, stack: Stack<'static>) {
    loop {
        JOIN.wait().await;
        while let Err(e) = controller.connect_async().await {
            println!("# WiFi join failed: {e:?}");
            Timer::after_millis(WIFI_RETRY_MS).await;
        }
        stack.wait_config_up().await;
        if let Some(c) = stack.config_v4() {
            println!("# WiFi up, address {}", c.address);
        }
        LINK.send(true).await;
        let _ = controller.wait_for_disconnect_async().await;
        LINK.send(false).await;
    }
}
