//! ESP32-C3 firmware: the mqsim device application (`mqsim::device::Device`, the very state
//! machine the simulator runs) over esp-radio WiFi, embassy-net DHCP/TCP and a DHT22.
//!
//! Three embassy tasks: the network stack's runner, the WiFi station (joins when the device asks,
//! reports the link up once DHCP has leased an address, and down on disconnect), and `main`, the
//! device's loop: the core's glue (`mqsim::device::glue::Glue::settle`) after every input, then whichever comes first of a
//! link change, a socket event or the device's wake-up. All MQTT, publishing and reconnecting
//! decisions are the core's; this file only moves bytes, time, link state and readings.

#![no_std]
#![no_main]

extern crate alloc;

mod board;
mod config;
mod settings;

use embassy_executor::Spawner;
use embassy_futures::select::{select3, Either3};
use embassy_net::{Runner, Stack, StackResources};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::channel::Channel;
use embassy_sync::signal::Signal;
use embassy_time::Timer;
use esp_alloc as _;
use esp_backtrace as _;
use esp_hal::clock::CpuClock;
use esp_hal::rng::Rng;
use esp_hal::timer::timg::TimerGroup;
use esp_println::println;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{AuthenticationMethodConfig, Config, Interface, WifiController};
use static_cell::StaticCell;

use board::{Dht22, EspClock, EspConsole, EspTransport, EspWifi, TcpEvent};
use mqsim::device::glue::{Board, Clock, Glue, Input};
use mqsim::device::Device;

esp_bootloader_esp_idf::esp_app_desc!();

/// The device asked to join the access point.
static JOIN: Signal<CriticalSectionRawMutex, ()> = Signal::new();
/// Link changes for the device: up (joined, address leased) or down.
static LINK: Channel<CriticalSectionRawMutex, bool, 4> = Channel::new();

/// Heap: the WiFi driver (~70 KiB) plus the device (client buffers, queued messages).
const HEAP_BYTES: usize = 96 * 1024;
/// Socket buffers: PubSubClient's 256-byte packets, esp-mqtt's 1 KiB, with room to spare.
const TCP_RX_BYTES: usize = 2048;
const TCP_TX_BYTES: usize = 2048;
/// Bytes read from the socket per read call.
const READ_CHUNK_BYTES: usize = 1024;
/// Wait between failed joins (arduino-esp32 retries on its own; so does this task).
const WIFI_RETRY_MS: u64 = 1_000;

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    esp_alloc::heap_allocator!(size: HEAP_BYTES);

    // The scheduler first: the WiFi driver runs on it.
    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    let settings = config::settings();
    let device_config = match settings::device_config(&settings) {
        Ok(c) => c,
        Err(e) => panic!("bad build-time settings: {e:?}"),
    };
    let broker = config::broker();
    println!(
        "mqsim firmware: profile {}, client id {}, broker {}:{}, DHT22 on GPIO{}",
        settings.profile,
        settings.client_id,
        broker.0,
        broker.1,
        config::dht_gpio()
    );

    let mut controller =
        WifiController::new(peripherals.WIFI, Default::default()).expect("WiFi controller");
    let auth = if config::PASSWORD.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        AuthenticationMethodConfig::WpaWpa2Personal(
            config::PASSWORD.try_into().expect("password too long"),
        )
    };
    let station = Config::Station(
        StationConfig::default()
            .with_ssid(config::SSID.try_into().expect("SSID too long"))
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
        broker,
    );
    let mut board = Board {
        clock: EspClock,
        console: EspConsole,
        wifi: EspWifi { join: &JOIN },
        sensor: Dht22::new(config::dht_gpio()),
        transport,
    };

    let dev = Device::new(device_config, board.clock.now()).expect("validated above");
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
        let ev = select3(LINK.receive(), board.transport.next_event(&mut rbuf), sleep).await;
        let now = board.clock.now();
        match ev {
            Either3::First(up) => glue.handle(now, Input::Wifi(up)),
            Either3::Second(TcpEvent::Connected) => glue.handle(now, Input::TcpConnected),
            Either3::Second(TcpEvent::Failed) => glue.handle(now, Input::TcpFailed),
            Either3::Second(TcpEvent::Bytes(n)) => glue.handle(now, Input::Bytes(&rbuf[..n])),
            Either3::Second(TcpEvent::Closed) => glue.handle(now, Input::TcpClosed),
            Either3::Third(()) => glue.handle(now, Input::Timer),
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
